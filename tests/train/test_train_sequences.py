"""Sequences, leave-one-out and batching: every transition is a target exactly once, padding never counts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalerec.data.read.sequences import (
    UserSequences,
    item_popularity,
    load_sequences,
    pad_left,
)
from scalerec.data.read.splits import leave_one_out
from scalerec.errors import UserError
from scalerec.train.padded import TrainBatches

SEQS = [[1, 2, 3, 4, 5], [6, 7], [8], [2, 3, 4], list(range(1, 13))]


def test_load_sequences_roundtrip(tmp_path):
    users = [u + 1 for u, s in enumerate(SEQS) for _ in s]
    items = [i for s in SEQS for i in s]
    table = pa.table(
        {
            "user_id": pa.array(users, pa.int32()),
            "item_id": pa.array(items, pa.int32()),
            "timestamp": pa.array(range(len(items)), pa.int64()),
            "rating": pa.array([None] * len(items), pa.float32()),
        }
    )
    pq.write_table(table, tmp_path / "interactions.parquet")
    seqs = load_sequences(tmp_path)
    assert [list(seqs.row(u)) for u in range(seqs.n_users)] == SEQS
    assert seqs.n_items == 12
    with pytest.raises(UserError):
        load_sequences(tmp_path / "missing")


def test_leave_one_out():
    split = leave_one_out(UserSequences.from_lists(SEQS, 12))
    train = [list(split.train.row(u)) for u in range(split.train.n_users)]
    assert train == [[1, 2, 3], [], [], [], list(range(1, 11))]  # [2] (1 item) emptied
    vh, vt = split.valid
    assert [list(vh.row(u)) for u in range(vh.n_users)] == [[1, 2, 3], [2], list(range(1, 11))]
    assert list(vt) == [4, 3, 11] and list(split.valid_users) == [1, 4, 5]
    th, tt = split.test
    assert list(tt) == [5, 7, 4, 12] and list(split.test_users) == [1, 2, 4, 5]
    assert list(th.row(1)) == [6]
    pop = item_popularity(split.train)
    assert pop[0] == 0 and pop[1] == 2 and pop[11] == 0 and len(pop) == 13


def test_pad_left_keeps_most_recent():
    out, lengths = pad_left(UserSequences.from_lists([[1, 2, 3, 4], [5]], 5), 3)
    assert out.tolist() == [[2, 3, 4], [5, 0, 0]] and lengths.tolist() == [3, 1]


def _collect(tb: TrainBatches, n_batches: int):
    it = tb.batches()
    return [next(it) for _ in range(n_batches)]


@pytest.mark.parametrize("max_len", [3, 4, 50])
def test_all_mode_each_transition_once(max_len):
    seqs = UserSequences.from_lists(SEQS, 12)
    tb = TrainBatches(seqs, max_len=max_len, batch_size=2, seed=0)
    pairs, total = [], 0
    for batch in _collect(tb, len(tb)):
        inp, tgt = batch.inputs.numpy(), batch.targets.numpy()
        assert inp.shape[1] == max_len
        assert ((inp == 0) == (tgt == 0)).all()  # padding never a target
        pairs += [(int(a), int(b)) for a, b in zip(inp[tgt > 0], tgt[tgt > 0], strict=True)]
        total += batch.n_targets
    expected = [(s[i], s[i + 1]) for s in SEQS for i in range(len(s) - 1)]
    assert sorted(pairs) == sorted(expected) and total == len(expected) == tb.targets_per_epoch()


def test_last_mode_every_prefix_once():
    seqs = UserSequences.from_lists(SEQS, 12)
    tb = TrainBatches(seqs, max_len=4, batch_size=3, seed=1, targets="last")
    got = []
    for batch in _collect(tb, len(tb)):
        inp, tgt = batch.inputs.numpy(), batch.targets.numpy()
        assert ((tgt > 0).sum(1) == 1).all()
        for row, trow in zip(inp, tgt, strict=True):
            t = int(np.nonzero(trow)[0][0])
            assert (row[: t + 1] > 0).all() and (row[t + 1 :] == 0).all()
            got.append((tuple(row[: t + 1]), int(trow[t])))
    expected = [(tuple(s[max(0, e - 5) : e - 1]), s[e - 1]) for s in SEQS for e in range(2, len(s) + 1)]
    assert sorted(got) == sorted(expected)


def test_deterministic_resumable_and_ddp_slices():
    seqs = UserSequences.from_lists(SEQS * 3, 12)
    a = _collect(TrainBatches(seqs, 4, 4, seed=7), 9)
    b_tb = TrainBatches(seqs, 4, 4, seed=7)
    b = _collect(b_tb, 5)
    state = b_tb.state_dict()
    c_tb = TrainBatches(seqs, 4, 4, seed=7)
    c_tb.load_state_dict(state)
    b += _collect(c_tb, 4)
    for x, y in zip(a, b, strict=True):
        assert (x.inputs == y.inputs).all() and (x.targets == y.targets).all()
    other = _collect(TrainBatches(seqs, 4, 4, seed=8), 1)[0]
    assert not (other.inputs == a[0].inputs).all()
    r0 = _collect(TrainBatches(seqs, 4, 4, seed=7, rank=0, world_size=2), 9)
    r1 = _collect(TrainBatches(seqs, 4, 4, seed=7, rank=1, world_size=2), 9)
    for full, x, y in zip(a, r0, r1, strict=True):
        assert (full.inputs[0::2] == x.inputs).all() and (full.inputs[1::2] == y.inputs).all()
        assert full.n_targets == x.n_targets == y.n_targets
