"""`UserSequences.take`: the one row-selection helper behind splits, eval subsets and fine-tuning."""

from __future__ import annotations

import numpy as np

from scalerec.data.read.sequences import UserSequences
from scalerec.data.read.splits import leave_one_out

SEQS = [[1, 2, 3, 4, 5], [6, 7], [8], [], [2, 3, 4]]


def _lists(seqs: UserSequences) -> list[list[int]]:
    return [seqs.row(i).tolist() for i in range(seqs.n_users)]


def test_take_rows_in_given_order_and_prefixes():
    seqs = UserSequences.from_lists(SEQS, 9)
    assert _lists(seqs.take(np.array([4, 0, 3]))) == [[2, 3, 4], [1, 2, 3, 4, 5], []]
    cut = seqs.take(np.arange(5), np.array([2, 5, -1, 3, 0]))  # clipped to [0, row length]
    assert _lists(cut) == [[1, 2], [6, 7], [], [], []]
    assert cut.n_items == 9 and cut.offsets.dtype == np.int64


def test_leave_one_out_matches_per_user_reference():
    rng = np.random.default_rng(0)
    lists = [rng.integers(1, 50, size=int(n)).tolist() for n in rng.integers(0, 12, size=200)]
    split = leave_one_out(UserSequences.from_lists(lists, 50))
    train = [s[:-2] if len(s) >= 4 else [] for s in lists]
    assert _lists(split.train) == train
    v = [u for u, s in enumerate(lists) if len(s) >= 3]
    assert _lists(split.valid[0]) == [lists[u][:-2] for u in v]
    assert split.valid[1].tolist() == [lists[u][-2] for u in v]
    t = [u for u, s in enumerate(lists) if len(s) >= 2]
    assert _lists(split.test[0]) == [lists[u][:-1] for u in t]
    assert split.test[1].tolist() == [lists[u][-1] for u in t]
    assert split.test_users.tolist() == [u + 1 for u in t]
