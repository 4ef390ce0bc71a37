"""User histories as flat int arrays, and the batches the trainer eats.

The dataset dir stores interactions sorted by (user, time); here they become one CSR-style pair
(`offsets`, `items`) so that splitting, padding and batching are vectorised index arithmetic, never
per-user Python loops. `TrainBatches` makes every position of every sequence a target (SASRec-style
next-item prediction), which gives the same signal as the paper's RecBole pipeline — where every
prefix of a history is its own sample — at about 1/n of the compute; `targets="last"` keeps the
paper's one-target-per-sample mode for comparison. Batches are built on the training device from
index tensors, so a GPU is fed without a host-side collate step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch

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


class Batch(NamedTuple):
    """One local batch plus what the trainer needs to normalise the loss across ranks and steps."""

    inputs: torch.Tensor  # int64[B, T], 0 = padding
    targets: torch.Tensor  # int64[B, T], targets[b, t] = next item after inputs[b, t]; 0 = ignore
    n_targets: int  # non-padding targets in the GLOBAL batch (all ranks)


class TrainBatches:
    """Shuffled training batches, deterministic per (seed, epoch) and resumable mid-epoch.

    A *unit* is one window of one user's sequence. With `targets="all"`, a sequence of n items
    longer than `max_len + 1` is cut into windows of `max_len + 1` items ending at its last item
    (consecutive windows overlap by one item), so every transition is a target exactly once.
    With `targets="last"`, every prefix end is its own unit and only its final position is a
    target (the paper's RecBole sampling: a history of n items is encoded n - 1 times per epoch).

    For DDP, every rank draws the same global permutation and takes rows `rank::world_size` of
    each global batch of `batch_size` units, so any world size sees the same global batches.
    """

    def __init__(
        self,
        train: UserSequences,
        max_len: int,
        batch_size: int,
        seed: int,
        targets: Literal["all", "last"] = "all",
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
    ) -> None:
        if targets not in ("all", "last"):
            raise ValueError(f"targets must be 'all' or 'last', got {targets!r}")
        if batch_size % world_size:
            raise UserError(f"train.batch_size={batch_size} is not divisible by world size {world_size}")
        self.max_len, self.batch_size, self.seed, self.mode = max_len, batch_size, seed, targets
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.device = torch.device(device)
        self.unit_row, self.unit_end = self._units(train)
        off = train.offsets[self.unit_row]
        self.unit_start = np.maximum(off, self.unit_end - max_len - 1) if targets == "all" else None
        if targets == "all":
            self.unit_targets = self.unit_end - self.unit_start - 1
        else:
            self.unit_targets = np.ones(len(self.unit_end), dtype=np.int64)
        self._items = torch.as_tensor(train.items.astype(np.int64), device=self.device)
        self._off = torch.as_tensor(train.offsets, device=self.device)
        # unit arrays live on the device: a batch is built without host-to-device copies
        start = self.unit_start if self.unit_start is not None else self.unit_end
        self._t_end = torch.as_tensor(self.unit_end, device=self.device)
        self._t_start = torch.as_tensor(start, device=self.device)
        self._t_row_off = torch.as_tensor(off, device=self.device)
        self.epoch, self.position = 0, 0
        self._perm_cache: tuple[int, np.ndarray, torch.Tensor] | None = None

    def _units(self, train: UserSequences) -> tuple[np.ndarray, np.ndarray]:
        """(row, absolute end offset) of every unit."""
        lengths = train.lengths()
        rows = np.nonzero(lengths >= 2)[0]
        if self.mode == "last":
            n_units = lengths[rows] - 1
            row = np.repeat(rows, n_units)
            first = np.cumsum(n_units) - n_units
            k = np.arange(len(row)) - np.repeat(first, n_units)
            return row, train.offsets[row] + 2 + k
        step = self.max_len
        n_win = (lengths[rows] - 2) // step + 1
        row = np.repeat(rows, n_win)
        first = np.cumsum(n_win) - n_win
        k = np.arange(len(row)) - np.repeat(first, n_win)
        return row, train.offsets[row + 1] - k * step

    @property
    def n_units(self) -> int:
        return len(self.unit_row)

    def targets_per_epoch(self) -> int:
        return int(self.unit_targets.sum())

    def __len__(self) -> int:
        """Global batches per epoch."""
        full, rest = divmod(self.n_units, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _perm(self, epoch: int) -> tuple[np.ndarray, torch.Tensor]:
        """This epoch's unit order, on the host (target counts) and on the device (gathers)."""
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_units)
            self._perm_cache = (epoch, perm, torch.as_tensor(perm, device=self.device))
        return self._perm_cache[1], self._perm_cache[2]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.batches():
            yield batch.inputs, batch.targets

    def batches(self) -> Iterator[Batch]:
        """Endless stream of batches; epoch/position advance so `state_dict` can resume here."""
        while True:
            perm, perm_t = self._perm(self.epoch)
            while self.position < len(self):
                sl = slice(self.position * self.batch_size, (self.position + 1) * self.batch_size)
                self.position += 1
                yield self._build(perm[sl], perm_t[sl])
            self.epoch, self.position = self.epoch + 1, 0

    def _build(self, units: np.ndarray, units_t: torch.Tensor) -> Batch:
        n_targets = int(self.unit_targets[units].sum())
        local = units_t[self.rank :: self.world_size]
        end = self._t_end[local]
        ar = torch.arange(self.max_len, device=self.device)
        if self.mode == "all":
            start = self._t_start[local]
            n_in = end - start - 1  # inputs = items[start:end-1], targets = items[start+1:end]
        else:
            start = torch.maximum(self._t_row_off[local], end - 1 - self.max_len)
            n_in = end - 1 - start  # inputs = items[start:end-1]; target = items[end-1] at last slot
        mask = ar[None, :] < n_in[:, None]
        idx = torch.where(mask, start[:, None] + ar[None, :], 0)
        inputs = torch.where(mask, self._items[idx], 0)
        if self.mode == "all":
            targets = torch.where(mask, self._items[idx + 1], 0)
        else:
            last = ar[None, :] == (n_in - 1)[:, None]
            targets = torch.where(last, self._items[end - 1][:, None], 0)
        return Batch(inputs, targets, n_targets)
