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


def leave_one_out(seqs: UserSequences) -> Split:
    """Split each history: train = seq[:-2], valid = (seq[:-2], seq[-2]), test = (seq[:-1], seq[-1])."""
    lengths = seqs.lengths()
    all_rows = np.arange(seqs.n_users)
    train_len = lengths - 2
    train = seqs.take(all_rows, np.where(train_len >= 2, train_len, 0))  # 1 item: no transition
    v_rows = np.nonzero(lengths >= 3)[0]
    t_rows = np.nonzero(lengths >= 2)[0]
    last = seqs.offsets[1:] - 1  # offset of each row's last item
    valid = (seqs.take(v_rows, lengths[v_rows] - 2), seqs.items[last[v_rows] - 1].astype(np.int32))
    test = (seqs.take(t_rows, lengths[t_rows] - 1), seqs.items[last[t_rows]].astype(np.int32))
    return Split(train, valid, test, (v_rows + 1).astype(np.int32), (t_rows + 1).astype(np.int32))
