"""Training users streamed from the known-floor world: equal to the numpy reference, resumable,
never repeating, and with state that does not grow with the number of batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalerec.data.ingest.world import World, WorldConfig
from scalerec.scaling.world import write_world
from scalerec.train.world_stream import WorldBatches

CFG = WorldConfig(n_topics=60, variants=4, successors=3, length=7, session=4, seed=2)


def _batches(tmp_path, **kw) -> WorldBatches:
    write_world(CFG, tmp_path / "w", eval_users=20)
    return WorldBatches(tmp_path / "w", max_len=8, batch_size=6, seed=5, **kw)


def _tensor_numel(obj) -> int:
    seen = [obj, obj.gen]
    return sum(v.numel() for o in seen for v in vars(o).values() if isinstance(v, torch.Tensor))


def test_stream_equals_numpy_reference_and_never_repeats(tmp_path):
    wb = _batches(tmp_path)
    stream = wb.batches()
    got = [next(stream) for _ in range(4)]
    ref = World.build(CFG).sequences(np.arange(24), stream_seed=5)
    inputs = torch.cat([b.inputs for b in got]).numpy()
    targets = torch.cat([b.targets for b in got]).numpy()
    assert np.array_equal(inputs[:, :6], ref[:, :-1]) and (inputs[:, 6:] == 0).all()
    assert np.array_equal(targets[:, :6], ref[:, 1:])
    assert all(b.n_targets == 6 * 6 for b in got)
    eval_users = World.build(CFG).sequences(np.arange(20), CFG.seed, tag=6)
    assert not any((eval_users == row).all(axis=1).any() for row in ref)  # training never sees eval users


def test_resume_continues_the_stream_and_state_stays_bounded(tmp_path):
    wb = _batches(tmp_path)
    stream = wb.batches()
    for _ in range(3):
        next(stream)
    state = wb.state_dict()
    size_before = _tensor_numel(wb)
    expected = [next(stream).inputs for _ in range(2)]
    for _ in range(50):
        next(stream)
    assert _tensor_numel(wb) == size_before  # nothing accumulates as the stream goes on
    again = _batches(tmp_path)
    again.load_state_dict(state)
    resumed = again.batches()
    assert all(torch.equal(next(resumed).inputs, e) for e in expected)


def test_capped_stream_repeats_its_users(tmp_path):
    wb = _batches(tmp_path, train_users=12)
    stream = wb.batches()
    first = [next(stream).inputs for _ in range(2)]
    assert torch.equal(next(stream).inputs, first[0]) and len(wb) == 2
    assert wb.targets_per_epoch() == 12 * 6


def test_world_dir_holds_eval_users_catalog_and_tokens(tmp_path):
    from scalerec.data.read.sequences import load_sequences
    from scalerec.text.item_tokens import load_item_tokens

    manifest = write_world(CFG, tmp_path / "w", eval_users=20)
    seqs = load_sequences(tmp_path / "w")
    assert seqs.n_users == 20 and seqs.n_items == CFG.n_items
    tokens = load_item_tokens(tmp_path / "w" / "tokens")
    assert tokens.n_rows == CFG.n_items + 1 and tokens.fields["title"].shape[1] == 2
    world = World.build(CFG)
    assert manifest["bayes_floor"] == world.bayes_floor()
    # the evaluation floor is the optimal predictor's loss on the users written, read back from the dir
    lp = world.bayes_logprob(np.stack([seqs.row(i) for i in range(seqs.n_users)]))
    valid, test = -lp[:, -2].mean(), -lp[:, -1].mean()
    assert manifest["eval_floor"] == {"valid": pytest.approx(valid), "test": pytest.approx(test)}
    assert manifest["eval_floor"]["valid"] != manifest["eval_floor"]["test"]  # two targets, two samples
    mtime = (tmp_path / "w" / "world.json").stat().st_mtime_ns
    write_world(CFG, tmp_path / "w", eval_users=20)  # identical world: kept, not rewritten
    assert (tmp_path / "w" / "world.json").stat().st_mtime_ns == mtime


def test_variant_context_stream_equals_numpy_reference():
    """context="variant" (world_v5): the class comes from the previous item's variant, on the
    device as in the numpy reference, bit for bit."""
    from scalerec.train.world_stream import WorldGenerator

    for rule_variant in (False, True):
        cfg = WorldConfig(n_topics=60, variants=4, successors=3, length=9, session=0, context="variant",
                          rule_variant=rule_variant, seed=2)
        world = World.build(cfg)
        got = WorldGenerator(world, torch.device("cpu")).sequences(torch.arange(50), 5).numpy()
        assert np.array_equal(got, world.sequences(np.arange(50), stream_seed=5))
