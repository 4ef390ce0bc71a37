"""User histories as flat int arrays.

The dataset dir stores interactions sorted by (user, time); here they become one CSR-style pair
(`offsets`, `items`) so that splitting, padding and batching are vectorised index arithmetic, never
per-user Python loops. Torch batching over them lives in `scalerec.train.padded` and
`scalerec.train.batches`, so this layer needs only numpy and pyarrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalerec.errors import UserError


@dataclass
class UserSequences:
    """Item histories in CSR form: user u (1-based id) is `items[offsets[u-1]:offsets[u]]`, oldest first."""

    offsets: np.ndarray  # int64[n_users + 1]
    items: np.ndarray  # int32[nnz]
    n_items: int

    def lengths(self) -> np.ndarray:
        """int64[n_users]: history length per row."""
        return np.diff(self.offsets)

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> np.ndarray:
        return self.items[self.offsets[i] : self.offsets[i + 1]]

    def take(self, rows: np.ndarray, lengths: np.ndarray | None = None) -> UserSequences:
        """Rows `rows` (0-based, in the given order), each cut to its first `lengths[k]` items
        (default: whole rows). The one way to select users or drop their last items: splits,
        evaluation subsets and fine-tuning subsamples all go through it.
        """
        rows = np.asarray(rows, dtype=np.int64)
        start = self.offsets[rows]
        full = self.offsets[rows + 1] - start
        keep = full if lengths is None else np.clip(np.asarray(lengths, dtype=np.int64), 0, full)
        offsets = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
        idx = np.repeat(start - offsets[:-1], keep) + np.arange(offsets[-1])
        return UserSequences(offsets, self.items[idx], self.n_items)

    @classmethod
    def from_lists(cls, seqs: list[list[int]], n_items: int | None = None) -> UserSequences:
        """Build from Python lists (tests, small tools)."""
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = np.array([i for s in seqs for i in s], dtype=np.int32)
        n = int(items.max()) if n_items is None and len(items) else int(n_items or 0)
        return cls(offsets, items, n)


def load_sequences(dataset_dir: str | Path) -> UserSequences:
    """Read `interactions.parquet` (sorted by user_id, timestamp) into `UserSequences`."""
    import pyarrow.parquet as pq

    path = Path(dataset_dir) / "interactions.parquet"
    if not path.is_file():
        raise UserError(f"{path}: not found (expected a dataset dir written by `scalerec data prepare`)")
    table = pq.read_table(path, columns=["user_id", "item_id"])
    users = table.column("user_id").to_numpy().astype(np.int64)
    items = table.column("item_id").to_numpy().astype(np.int32)
    if len(users) and (users.min() < 1 or items.min() < 1):
        raise UserError(f"{path}: user_id and item_id must be dense from 1 (0 is padding)")
    if np.any(np.diff(users) < 0):
        raise UserError(f"{path}: rows are not sorted by user_id")
    n_users, n_items = (int(users.max()), int(items.max())) if len(users) else (0, 0)
    card = Path(dataset_dir) / "card.json"
    if card.is_file():
        import json

        meta = json.loads(card.read_text())
        n_users = max(n_users, int(meta.get("n_users", 0)))
        n_items = max(n_items, int(meta.get("n_items", 0)))
    counts = np.bincount(users, minlength=n_users + 1)[1:]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return UserSequences(offsets, items, n_items)


def item_popularity(train: UserSequences) -> np.ndarray:
    """int64[n_items+1]: interaction count per item in `train` (index 0 = padding = 0)."""
    counts = np.bincount(train.items, minlength=train.n_items + 1).astype(np.int64)
    counts[0] = 0
    return counts


def pad_left(histories: UserSequences, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the most recent `max_len` items of each row, LEFT-aligned with right padding 0.

    Returns (`int64[U, max_len]` with position 0 = oldest kept item, `int64[U]` kept lengths).
    """
    lengths = np.minimum(histories.lengths(), max_len)
    start = histories.offsets[1:] - lengths
    idx = start[:, None] + np.arange(max_len)[None, :]
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    safe = np.where(mask, idx, 0)
    out = np.where(mask, histories.items[safe] if len(histories.items) else 0, 0).astype(np.int64)
    return out, lengths.astype(np.int64)
