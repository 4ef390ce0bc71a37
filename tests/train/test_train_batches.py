"""Packed (padding-free) batches: the packing, the stream, and the loss they give.

Item ids are made unique per interaction (item = its offset + 1), so a target id names one
transition of one user and coverage can be counted exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench_scripts import load_script
from scalerec.data.read.sequences import UserSequences
from scalerec.errors import UserError
from scalerec.model import SequentialRecommender
from scalerec.model.sizes import model_config
from scalerec.train.batches import (
    PackedBatches,
    UnpackedBatches,
    pack,
    train_batches,
    unpack,
    wants_packing,
    windows,
)
from scalerec.train.objective import NextItemObjective, distinct_items
from scalerec.train.padded import TrainBatches


def _world(n_users: int, max_items: int, seed: int = 0) -> UserSequences:
    """Users with 2..max_items items (skewed short, as real histories), every item id distinct."""
    rng = np.random.default_rng(seed)
    lengths = np.minimum(2 + rng.geometric(0.15, n_users), max_items)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = np.arange(1, offsets[-1] + 1, dtype=np.int32)
    return UserSequences(offsets, items, int(offsets[-1]))


def _stream(pb: PackedBatches | UnpackedBatches, n: int) -> list:
    it = pb.batches()
    return [next(it) for _ in range(n)]


def test_windows_are_the_padded_batchers_units() -> None:
    seqs = _world(300, 40)
    start, size = windows(seqs, 8)
    tb = TrainBatches(seqs, 8, 16, seed=0)
    assert sorted(zip(start, size, strict=True)) == sorted(zip(tb.unit_start, tb.unit_targets, strict=True))
    assert size.max() == 8 and size.min() >= 1


def test_pack_is_a_valid_near_optimal_packing() -> None:
    rng = np.random.default_rng(0)
    sizes = np.minimum(1 + rng.geometric(0.12, 5000), 50)
    row, offset, n_rows = pack(sizes, 50, np.random.default_rng(1))
    slots = np.zeros((n_rows, 50), dtype=np.int64)
    for r, o, s in zip(row, offset, sizes, strict=True):
        slots[r, o : o + s] += 1
    assert slots.max() == 1 and (offset + sizes <= 50).all()  # no overlap, nothing spills over a row
    assert (slots[:, 0] == 1).all()  # every row starts with a unit (the batcher relies on it)
    assert n_rows <= -(-sizes.sum() // 50) * 1.01 + 1  # within 1% of the lower bound
    assert not np.array_equal(row, pack(sizes, 50, np.random.default_rng(2))[0])  # ties follow the rng
    with pytest.raises(ValueError, match="sizes"):
        pack(np.array([51]), 50, rng)


def test_every_real_target_once_per_epoch_positions_restart() -> None:
    seqs = _world(200, 30)
    max_len, rows = 8, 7
    pb = PackedBatches(seqs, max_len, seed=3, rows=rows)
    epochs = 3
    n_rows = sum(pb.rows_in_epoch(e) for e in range(epochs))
    batches = _stream(pb, -(-n_rows // rows) + 1)
    tgt = torch.cat([b.targets for b in batches])[:n_rows]
    counts = np.bincount(tgt[tgt > 0].numpy(), minlength=len(seqs.items) + 1)
    first = seqs.items[seqs.offsets[:-1]]  # a user's first item is never a target
    expect = np.full(len(seqs.items) + 1, epochs)
    expect[0], expect[first] = 0, 0
    assert np.array_equal(counts, expect)
    for b in batches:
        assert b.inputs.shape == b.targets.shape == b.positions.shape == (rows, max_len)
        assert b.n_targets == int((b.targets > 0).sum())
        live = b.targets > 0
        assert torch.equal(b.inputs > 0, live) and not b.positions[~live].any()
        # inside a window, the input is the previous slot's target; a window starts at position 0
        cont = b.positions[:, 1:] > 0
        assert torch.equal(b.inputs[:, 1:][cont], b.targets[:, :-1][cont])
        assert torch.equal(b.positions[:, 1:][cont], b.positions[:, :-1][cont] + 1)
        starts = live & (b.positions == 0)
        assert torch.equal(b.targets[starts], b.inputs[starts] + 1)  # ids consecutive within a user
        assert (b.targets[live] == b.inputs[live] + 1).all()
    fill = sum(b.n_targets for b in batches[:-1]) / ((len(batches) - 1) * rows * max_len)
    assert fill > 0.95  # padded rows would be ~35% full here


def test_stream_is_deterministic_resumable_and_rank_sliced() -> None:
    seqs = _world(150, 25)
    ref = _stream(PackedBatches(seqs, 6, seed=7, rows=6), 12)
    again = _stream(PackedBatches(seqs, 6, seed=7, rows=6), 12)
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(ref, again, strict=True))
    other = _stream(PackedBatches(seqs, 6, seed=8, rows=6), 1)[0]
    assert not torch.equal(other.inputs, ref[0].inputs)
    # resume mid-stream (across an epoch end) from the state after 5 batches
    pb = PackedBatches(seqs, 6, seed=7, rows=6)
    _stream(pb, 5)
    state = pb.state_dict()
    resumed = PackedBatches(seqs, 6, seed=7, rows=6)
    resumed.load_state_dict(state)
    for a, b in zip(_stream(resumed, 7), ref[5:], strict=True):
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.positions, b.positions)
    with pytest.raises(UserError, match="packing=off"):  # a padded stream's position counts batches
        resumed.load_state_dict(TrainBatches(seqs, 6, 4, seed=7).state_dict())
    # two ranks: interleaved rows of their local batches are the single-process batch
    r0 = _stream(PackedBatches(seqs, 6, seed=7, rows=6, rank=0, world_size=2), 12)
    r1 = _stream(PackedBatches(seqs, 6, seed=7, rows=6, rank=1, world_size=2), 12)
    for a, b, full in zip(r0, r1, ref, strict=True):
        assert torch.equal(torch.stack([a.targets, b.targets], 1).reshape(-1, 6), full.targets)
        assert a.n_targets == b.n_targets == full.n_targets
    # rows not a multiple of the world size: rank 0 gets one more, the global batch is the same
    odd = _stream(PackedBatches(seqs, 6, seed=7, rows=5), 3)
    r0, r1 = (_stream(PackedBatches(seqs, 6, seed=7, rows=5, rank=r, world_size=2), 3) for r in (0, 1))
    for a, b, full in zip(r0, r1, odd, strict=True):
        assert len(a.targets) == 3 and len(b.targets) == 2
        assert torch.equal(a.targets, full.targets[0::2]) and torch.equal(b.targets, full.targets[1::2])
    with pytest.raises(UserError, match="processes"):
        PackedBatches(seqs, 6, seed=7, rows=1, world_size=2)


def test_units_give_about_as_many_windows_per_batch_as_padded() -> None:
    seqs = _world(2000, 60)
    pb = PackedBatches(seqs, 10, seed=0, units=64, world_size=4)
    padded = TrainBatches(seqs, 10, 64, seed=0)
    assert pb.rows == PackedBatches(seqs, 10, seed=0, units=64).rows < 64  # whatever the world size
    assert abs(len(pb) - len(padded)) <= 0.05 * len(padded) + 1
    assert pb.targets_per_epoch() == padded.targets_per_epoch()


def test_auto_packs_short_histories_only() -> None:
    short = _world(300, 12)
    full = UserSequences.from_lists([list(range(1, 12))] * 20, 11)
    assert wants_packing("auto", "all", short, 50)
    assert not wants_packing("auto", "all", full, 10)  # every window fills its row
    assert not wants_packing("auto", "last", short, 50) and not wants_packing("off", "all", short, 50)
    assert wants_packing("on", "all", full, 10)
    with pytest.raises(UserError, match="targets"):
        wants_packing("on", "last", short, 50)
    assert isinstance(train_batches(short, 50, 16, 0, "all", "auto"), PackedBatches)
    assert isinstance(train_batches(short, 50, 16, 0, "all", "off"), TrainBatches)


def _model(encoder: str, n_items: int, attention: str = "sdpa") -> SequentialRecommender:
    torch.manual_seed(0)
    if encoder == "id":
        cfg = model_config("tiny", item_encoder="id", n_items=n_items, dropout=0.0, max_len=8,
                           attention=attention)
        return SequentialRecommender(cfg)
    cfg = model_config("tiny", vocab_size=30, field_max_len={"title": 3, "brand": 2}, dropout=0.0, max_len=8,
                       attention=attention)
    model = SequentialRecommender(cfg)
    g = torch.Generator().manual_seed(1)
    table = {"title": torch.randint(0, 30, (n_items + 1, 3), generator=g),
             "brand": torch.randint(0, 30, (n_items + 1, 2), generator=g)}
    for t in table.values():
        t[0] = 0
    model.set_item_table(table)
    return model


@pytest.mark.parametrize(("encoder", "loss", "distinct"), [
    ("text", "sampled", True), ("text", "sampled", False), ("text", "full", True), ("id", "bce", False),
])
def test_packed_and_padded_batches_give_the_same_loss_and_gradients(encoder, loss, distinct) -> None:
    """fp32, CPU, SDPA with the block-diagonal mask: the sum over every real target and the
    gradient of every parameter agree to 1e-5 between one padded and one packed batch of the same
    windows."""
    rng = np.random.default_rng(0)
    lists = [list(rng.integers(1, 40, n)) for n in (3, 9, 2, 5, 12, 4, 7, 2, 6)]
    seqs = UserSequences.from_lists(lists, 40)
    padded = TrainBatches(seqs, 8, 64, seed=0)
    pb = next(padded.batches())
    rows = PackedBatches(seqs, 8, seed=0, rows=1).rows_per_epoch  # one batch = one whole epoch
    packed = next(PackedBatches(seqs, 8, seed=0, rows=rows).batches())
    assert packed.n_targets == pb.n_targets
    assert (packed.targets > 0).flatten(1).sum(1).ne(0).sum() < (pb.targets > 0).flatten(1).sum(1).ne(0).sum()
    model = _model(encoder, 40)
    obj = NextItemObjective(model, loss, "all")
    params = [p for p in model.parameters() if p.requires_grad]
    results = []
    for b, pos in ((pb, None), (packed, packed.positions)):
        if loss == "bce":  # one negative per target: the same negative for the same target id
            neg = (b.targets.reshape(-1) * 7) % 40 + 1
        else:
            neg = None if loss == "full" else torch.tensor([3, 9, 17, 25, 33])
        d = distinct_items(b.inputs, b.targets, neg, bucket=8, packed=pos is not None) if distinct else None
        value = obj(b.inputs, b.targets, neg, d, pos)
        results.append((value, torch.autograd.grad(value, params, allow_unused=True)))
    (a, ga), (b, gb) = results
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for x, y in zip(ga, gb, strict=True):
        assert (x is None) == (y is None)
        if x is not None:
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


def test_unpack_lays_each_packed_window_out_alone_as_the_padded_batcher_does() -> None:
    """`unpack`: one left-aligned row per window of a packed batch — the same rows (as a multiset) as
    the padded batcher cuts from the same epoch, and as many targets."""
    seqs = _world(40, 30)
    padded = next(TrainBatches(seqs, 8, 1000, seed=0).batches())  # the whole epoch in one batch
    rows = PackedBatches(seqs, 8, seed=0, rows=1).rows_per_epoch
    packed = next(PackedBatches(seqs, 8, seed=0, rows=rows).batches())
    flat = unpack(packed)
    assert flat.positions is None and flat.n_targets == packed.n_targets
    assert int((flat.targets > 0).sum()) == packed.n_targets

    def windows_of(b) -> list[tuple[int, ...]]:
        live = (b.targets > 0).any(1)
        return sorted(tuple(r) for r in torch.cat([b.inputs, b.targets], 1)[live].tolist())

    assert windows_of(flat) == windows_of(padded)
    assert unpack(padded) is padded  # a padded batch is its own unpacking


def test_unpacked_control_keeps_the_packed_streams_batches_in_padded_rows() -> None:
    """`train.packing="unpacked"`: batch for batch, the packed stream's windows (same batches, same
    order, same target count), laid out one per row, rows padded to a multiple of 32 with empty rows;
    it resumes mid-stream and refuses another layout's state."""
    seqs = _world(300, 25)
    ref = _stream(PackedBatches(seqs, 8, seed=3, units=40), 9)
    stream = train_batches(seqs, 8, 40, 3, "all", "unpacked")
    assert isinstance(stream, UnpackedBatches) and len(stream) == len(stream.packed)
    got = _stream(stream, 9)
    for u, p in zip(got, ref, strict=True):
        flat = unpack(p)
        assert u.positions is None and u.inputs.shape[0] % 32 == 0 and u.n_targets == p.n_targets
        n = flat.inputs.shape[0]
        assert torch.equal(u.inputs[:n], flat.inputs) and torch.equal(u.targets[:n], flat.targets)
        assert not u.inputs[n:].any() and not u.targets[n:].any()
    resumed = train_batches(seqs, 8, 40, 3, "all", "unpacked")
    first = train_batches(seqs, 8, 40, 3, "all", "unpacked")
    _stream(first, 4)
    resumed.load_state_dict(first.state_dict())
    assert torch.equal(next(resumed.batches()).inputs, got[4].inputs)
    with pytest.raises(UserError, match="unpacked"):
        resumed.load_state_dict(PackedBatches(seqs, 8, seed=3, units=40).state_dict())
    with pytest.raises(UserError, match="targets='all'"):
        wants_packing("unpacked", "last", seqs, 8)


def test_packing_grad_probe_paths_agree_without_dropout() -> None:
    """benchmarks/packing_grad_probe.py on the CPU: packed and padded SDPA fp32 give the reference's
    loss and gradients to 1e-5 with dropout off, and under bf16 autocast packing adds no error beyond
    bf16's own; with dropout on, errors are reported against a noise floor (both layouts draw
    different masks)."""
    bench = load_script("benchmarks/packing_grad_probe.py", "packing_grad_probe_bench", register=True)
    seqs = _world(60, 12)
    model = _model("text", len(seqs.items))
    stream = PackedBatches(seqs, 8, seed=0, units=16).batches()
    rows = bench.probe(model, [next(stream) for _ in range(2)], torch.device("cpu"), draws=2, dropout=0.3)
    by = {(r["path"], r["dropout"]): r for r in rows}
    exact = by[("packed/sdpa/fp32/eager", 0.0)]
    assert exact["grad_rel_err"] < 1e-5
    assert exact["loss_per_target"] == pytest.approx(exact["ref_loss_per_target"], rel=1e-6)
    # bf16 autocast (CPU): packing adds no error of its own beyond what bf16 gives the padded batch
    bf16 = {layout: by[(f"{layout}/sdpa/bf16/eager", 0.0)]["grad_rel_err"] for layout in ("packed", "padded")}
    assert 0 < bf16["packed"] < 2 * bf16["padded"] + 1e-3
    noisy = by[("packed/sdpa/fp32/eager", 0.3)]
    assert noisy["noise_floor"] > 0 and noisy["err_over_floor"] is not None
    assert by[("padded/sdpa/fp32/eager", 0.3)]["grad_rel_err"] < 1e-6  # the reference against itself


def _compiled_packed_steps(device: str) -> tuple[int, list[tuple[float, float]]]:
    """(graphs compiled, [(compiled loss, eager loss)]) over 3 packed batches of a text model, with
    distinct items (whose count changes every batch) — the trainer's step, fullgraph; on CUDA with
    the Triton kernel ("auto"), on CPU with SDPA."""
    from torch._dynamo.utils import counters

    seqs = _world(600, 40)
    model = _model("text", len(seqs.items), "auto" if device == "cuda" else "sdpa").to(device)
    obj = NextItemObjective(model, "sampled", "all")
    step = torch.compile(obj, fullgraph=True)
    stream = PackedBatches(seqs, 8, seed=0, rows=32, device=device).batches()
    torch._dynamo.reset()
    counters.clear()
    out = []
    for _ in range(3):
        b = next(stream)
        neg = torch.randint(1, len(seqs.items) + 1, (16,), device=device)
        d = distinct_items(b.inputs, b.targets, neg, bucket=64, packed=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = step(b.inputs, b.targets, neg, d, b.positions)
            ref = obj(b.inputs, b.targets, neg, d, b.positions)
        loss.backward()
        out.append((float(loss.detach()), float(ref.detach())))
    return counters["stats"]["unique_graphs"], out


@pytest.mark.slow
def test_packed_step_compiles_to_one_graph_cpu() -> None:
    graphs, losses = _compiled_packed_steps("cpu")
    assert graphs == 1
    for got, want in losses:
        assert got == pytest.approx(want, rel=1e-4)


@pytest.mark.gpu
def test_packed_step_compiles_to_one_graph_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    graphs, losses = _compiled_packed_steps("cuda")
    assert graphs == 1
    for got, want in losses:
        assert got == pytest.approx(want, rel=2e-2)


def test_throughput_benchmark_real_mode_on_cpu(world, capsys) -> None:
    """benchmarks/train_throughput.py --dataset: padded, packed and full-window rows, one summary."""
    import json

    bench = load_script("benchmarks/train_throughput.py", "train_throughput_bench")
    data, tokens = world
    bench.main(["--dataset", str(data), "--tokens", str(tokens), "--batches", "8", "--steps", "2",
                "--warmup", "0", "--seq-len", "8", "--negatives", "8", "--set", "model.d_model=16",
                "model.d_ffn=32", "model.token_dim=8"])
    rows = {r["kind"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["full_window"]["fill"] == 1.0 and rows["full_window"]["layout"] == "TrainBatches"
    assert rows["real_packed"]["layout"] == "PackedBatches"
    assert rows["real_padded"]["layout"] == "TrainBatches"
    assert rows["real_packed"]["fill"] > 0.9 > rows["real_padded"]["fill"]
    summary = rows["real_summary"]
    assert summary["packed_vs_padded"] == pytest.approx(
        rows["real_packed"]["targets_per_s"] / rows["real_padded"]["targets_per_s"])


@pytest.mark.parametrize("packing", ["on", "off", "unpacked"])
def test_both_layouts_train_and_learn(world, tmp_path, packing) -> None:
    """The trainer on packed and on padded batches: same steps per epoch (batch_size counts windows
    either way), and both learn the tiny world's next-item rule (chance: hr@10 = 0.25)."""
    from test_train_loop import tiny_cfg

    from scalerec.train import train

    cfg = tiny_cfg(world, tmp_path, packing, "train.max_steps=60", "eval.every_steps=30",
                   "train.log_every=30", "model.dropout=0.0", f"train.packing={packing}")
    s = train(cfg)
    assert s.final["test"]["hr@10"] > 0.5
    assert 10 <= s.final["epochs"] <= 14  # ~66 windows, 16 a batch: ~5 steps an epoch, 60 steps


def test_auto_packing_warns_only_where_it_was_measured_to_cost_accuracy() -> None:
    """A text (or hybrid) model packed by "auto" under bf16 autocast with the z-loss set to 0 gets the
    caveat; the default z-loss (which held the drift), an explicit "on", an ID model, padded batches or fp32
    (where packed runs followed the padded curves) do not."""
    from scalerec.train.setup import packing_caveat

    caveat = packing_caveat("auto", True, True, True, 0.0)
    assert caveat is not None and "train.packing=off" in caveat and "train.z_loss" in caveat
    assert packing_caveat("auto", True, True, True, 1e-4) is None
    assert packing_caveat("on", True, True, True, 0.0) is None
    assert packing_caveat("auto", True, False, True, 0.0) is None
    assert packing_caveat("auto", False, True, True, 0.0) is None
    assert packing_caveat("auto", True, True, False, 0.0) is None
