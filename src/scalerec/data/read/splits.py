"""Leave-one-out split: the protocol of SASRec and of the paper (last item test, second-last valid).

Done with index arithmetic on the CSR arrays of `UserSequences`, so a 10M-user dataset splits in
about a second. Valid/test histories keep the user ids they came from (`valid_users`,
`test_users`), so a caller can line them up with other per-user data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalerec.data.read.sequences import UserSequences


@dataclass
class Split:
    """`train`: each user's sequence minus its last 2 items (rows kept for every user; rows with
    fewer than 2 items are emptied, as they hold no transition). `valid`/`test`: (histories,
    targets int32[U]) for the users with a non-empty history."""

    train: UserSequences
    valid: tuple[UserSequences, np.ndarray]
    test: tuple[UserSequences, np.ndarray]
    valid_users: np.ndarray  # int32[U_valid] 1-based user ids
    test_users: np.ndarray  # int32[U_test]


def _take_prefix(seqs: UserSequences, rows: np.ndarray, drop_last: int) -> UserSequences:
    """Rows `rows` of `seqs`, each without its last `drop_last` items."""
    start = seqs.offsets[rows]
    lengths = np.maximum(seqs.offsets[rows + 1] - start - drop_last, 0)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    idx = np.repeat(start - offsets[:-1], lengths) + np.arange(offsets[-1])
    return UserSequences(offsets, seqs.items[idx], seqs.n_items)


def leave_one_out(seqs: UserSequences) -> Split:
    """Split each history: train = seq[:-2], valid = (seq[:-2], seq[-2]), test = (seq[:-1], seq[-1])."""
    lengths = seqs.lengths()
    all_rows = np.arange(seqs.n_users)
    train = _take_prefix(seqs, all_rows, 2)
    tl = train.lengths()
    if np.any(tl == 1):
        train = _truncate(train, np.where(tl >= 2, tl, 0))
    v_rows = np.nonzero(lengths >= 3)[0]
    t_rows = np.nonzero(lengths >= 2)[0]
    valid = (_take_prefix(seqs, v_rows, 2), seqs.items[seqs.offsets[v_rows + 1] - 2].astype(np.int32))
    test = (_take_prefix(seqs, t_rows, 1), seqs.items[seqs.offsets[t_rows + 1] - 1].astype(np.int32))
    return Split(train, valid, test, (v_rows + 1).astype(np.int32), (t_rows + 1).astype(np.int32))


def _truncate(seqs: UserSequences, new_lengths: np.ndarray) -> UserSequences:
    """Keep the first `new_lengths[u]` items of each row."""
    offsets = np.concatenate([[0], np.cumsum(new_lengths)]).astype(np.int64)
    idx = np.repeat(seqs.offsets[:-1] - offsets[:-1], new_lengths) + np.arange(offsets[-1])
    return UserSequences(offsets, seqs.items[idx], seqs.n_items)
