"""End-to-end training on a tiny world: run-dir contract, resume bit-for-bit, recipes, loaders."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from scalerec.config import load
from scalerec.errors import UserError
from scalerec.rundir import load_run
from scalerec.train import train, trainer
from scalerec.train.checkpoint import load_state
from scalerec.train.config import RunConfig, resolve_run_config

FINAL_KEYS = {
    "format_version",
    "run_id",
    "name",
    "params",
    "flops",
    "targets_seen",
    "steps",
    "epochs",
    "wall_time_s",
    "device",
    "best_step",
    "valid",
    "test",
    "dataset",
    "tokens",
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_cfg(world, out, name, *extra, size="tiny", recipe=None) -> RunConfig:
    data, tokens = world
    base = [
        f"data.dataset={data}",
        f"data.tokens={tokens}",
        "data.max_len=8",
        f"run.out={out}",
        f"run.name={name}",
        "run.tracking_uri=off",
        "run.progress=false",
        "train.max_steps=6",
        "train.batch_size=16",
        "train.negatives=16",
        "train.log_every=2",
        "eval.every_steps=3",
        "model.dropout=0.1",
        "train.lr=3e-3",
    ]
    return resolve_run_config(overrides=base + list(extra), size=size, recipe=recipe)


def test_train_lines_report_the_gradient_norm_and_how_often_the_clip_bites(world, tmp_path):
    """With train.grad_clip > 0 every train line carries the mean pre-clip norm over its window and the
    share of its steps the clip scaled down (a clip far below the norm: all of them); with the clip off,
    neither (nothing is computed)."""
    def train_lines(name, *extra):
        run = train(tiny_cfg(world, tmp_path, name, *extra)).run_dir
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [x for x in lines if "train/loss" in x]

    tight = train_lines("tight", "train.grad_clip=1e-6")
    assert len(tight) == 3 and all(x["train/grad_norm"] > 1e-6 and x["train/clipped"] == 1.0 for x in tight)
    loose = train_lines("loose", "train.grad_clip=1e6")
    assert all(x["train/grad_norm"] > 0 and x["train/clipped"] == 0.0 for x in loose)
    assert all("train/grad_norm" not in x for x in train_lines("off", "train.grad_clip=0"))


def test_run_dir_contract_and_load_run(world, tmp_path):
    summary = train(tiny_cfg(world, tmp_path, "a"))
    run = summary.run_dir
    final = json.loads((run / "final.json").read_text())
    assert set(final) >= FINAL_KEYS and final["steps"] == 6 and final["targets_seen"] > 0
    assert final["params"]["total"] == sum(
        final["params"][k]
        for k in ("token_embeddings", "item_adapter", "positions", "blocks", "final_norm", "id_embeddings")
    )
    assert final["flops"]["total"] == pytest.approx(final["flops"]["per_target"] * final["targets_seen"])
    assert 0 <= final["test"]["ndcg@10"] <= 1 and final["valid"]["loss"] > 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all({"step", "targets_seen", "flops"} <= set(x) for x in lines)
    assert any("train/loss" in x for x in lines) and any("valid/ndcg@10" in x for x in lines)
    cfg = load(RunConfig, toml=run / "config.toml")
    assert cfg.model.d_model == 32 and cfg.train.max_steps == 6
    loaded = load_run(run)
    assert loaded.meta["model_config"]["vocab_size"] == 30 and loaded.config["run"]["name"] == "a"
    weights = load_file(str(run / "model.safetensors"))
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in weights.items())
    assert loaded.model.all_item_vectors().shape == (41, 32)


def test_final_test_carries_the_paper_protocol_only_when_asked(world, tmp_path):
    plain = train(tiny_cfg(world, tmp_path, "plain")).final["test"]
    both = train(tiny_cfg(world, tmp_path, "paper", "eval.paper_sampled=20")).final["test"]
    assert not any(k.startswith("paper_sampled") for k in plain)
    assert 0 <= both["paper_sampled20/ndcg@5"] <= 1 and "paper_sampled20/hr@10" in both
    # the full-ranking figures are the same with or without the extra protocol
    assert both["ndcg@10"] == plain["ndcg@10"] and both["loss"] == plain["loss"]


def test_resume_is_bit_for_bit(world, tmp_path):
    full = train(tiny_cfg(world, tmp_path, "full", "train.max_steps=10"))
    part = train(tiny_cfg(world, tmp_path, "part", "train.max_steps=10", "train.stop_after_steps=4"))
    assert not part.completed and not (part.run_dir / "final.json").exists()
    assert load_state(part.run_dir)["counters"]["step"] == 4
    resumed = train(load(RunConfig, toml=part.run_dir / "config.toml"), resume=True)
    assert resumed.completed
    a, b = load_state(full.run_dir)["model"], load_state(resumed.run_dir)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (
        full.final["test"] == resumed.final["test"]
        and full.final["targets_seen"] == resumed.final["targets_seen"]
    )
    steps = [json.loads(x)["step"] for x in (resumed.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # no duplicated lines after resume


@pytest.mark.parametrize(
    "extra",
    [
        ("train.loss=full",),
        ("train.loss=bce",),
        ("train.sampler=in_batch", "train.grad_accum=2"),
        ("train.sampler=uniform", "train.logq=false", "train.layer_lr_decay=0.8", "train.schedule=onecycle"),
        ("train.targets=last", "train.shared_negatives=false", "train.optimizer=adam"),
    ],
)
def test_objectives_train(world, tmp_path, extra):
    s = train(tiny_cfg(world, tmp_path, "v", "train.max_steps=3", "eval.every_steps=3", *extra))
    losses = [json.loads(x).get("train/loss") for x in (s.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(v is None or v == v and v > 0 for v in losses)  # finite, positive


def test_learns_better_than_chance(world, tmp_path):
    s = train(
        tiny_cfg(
            world,
            tmp_path,
            "learn",
            "train.max_steps=60",
            "eval.every_steps=30",
            "train.log_every=30",
            "model.dropout=0.0",
        )
    )
    assert s.final["test"]["hr@10"] > 0.5  # chance: 10/40


def test_id_encoder_needs_no_tokens(world, tmp_path):
    data, _ = world
    cfg = tiny_cfg((data, ""), tmp_path, "id", "model.item_encoder=id", "train.max_steps=2")
    s = train(cfg)
    assert s.final["params"]["id_embeddings"] == 41 * 32 and s.final["params"]["token_embeddings"] == 0


def test_paper_recipe_resolves():
    cfg = resolve_run_config(overrides=["data.dataset=x"], size="paper-1M", recipe="paper")
    t, m = cfg.train, cfg.model
    assert (t.targets, t.shared_negatives, t.optimizer, t.lr, t.schedule, t.precision, t.grad_clip) == (
        "last",
        False,
        "adam",
        1e-4,
        "onecycle",
        "fp32",
        0.0,
    )
    assert (t.negatives, t.batch_size, t.weight_decay) == (1000, 128, 1e-5)
    assert (m.norm, m.pooling, m.dropout, m.d_model, m.n_layers, m.d_ffn) == (
        "post",
        "sum",
        0.5,
        256,
        8,
        1024,
    )
    assert set(m.field_max_len) == {"title", "brand"}
    ours = resolve_run_config(overrides=["data.dataset=x", "train.lr=5e-4"], size="paper-1M")
    assert (ours.train.targets, ours.model.norm, ours.train.lr) == ("all", "pre", 5e-4)


def test_config_errors():
    with pytest.raises(UserError, match="did you mean"):
        resolve_run_config(overrides=["train.lrr=1"])
    with pytest.raises(UserError):
        resolve_run_config(overrides=["train.targets=first"])
    with pytest.raises(UserError, match="model_size"):
        resolve_run_config(size="huge")


def test_cli_bad_path_is_one_line_error(tmp_path, capsys):
    from scalerec.cli import main

    with pytest.raises(SystemExit) as exc:
        main(
            [
                "train",
                "--data",
                str(tmp_path / "nope"),
                "--encoder",
                "id",
                "--out",
                str(tmp_path),
                "--tracking-uri",
                "off",
                "--set",
                "train.max_steps=1",
            ]
        )
    assert exc.value.code == 2
    assert "interactions.parquet" in capsys.readouterr().err


def test_frozen_configs_resolve():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs" / "train"
    paper = resolve_run_config(root / "paper.toml", ["data.dataset=x"])
    assert (paper.recipe, paper.model_size, paper.train.targets, paper.model.norm) == (
        "paper",
        "paper-1M",
        "last",
        "post",
    )
    ours = resolve_run_config(root / "default.toml", ["data.dataset=x"])
    assert (ours.recipe, ours.train.targets, ours.train.shared_negatives) == ("default", "all", True)


def test_cli_stop_and_resume(world, tmp_path):
    from scalerec.cli import main

    data, tokens = world
    common = ["--tracking-uri", "off", "--set", "run.progress=false"]
    for argv in (
        [
            "--data",
            str(data),
            "--tokens",
            str(tokens),
            "--size",
            "tiny",
            "--out",
            str(tmp_path),
            "--name",
            "c",
            "--set",
            "train.max_steps=4",
            "--set",
            "train.stop_after_steps=2",
            "--set",
            "data.max_len=8",
            "--set",
            "train.batch_size=16",
            "--set",
            "train.negatives=8",
        ],
        ["--resume", str(tmp_path / "c")],
    ):
        assert not (tmp_path / "c" / "final.json").exists()
        with pytest.raises(SystemExit) as exc:
            main(["train", *argv, *common])
        assert exc.value.code == 0
    final = json.loads((tmp_path / "c" / "final.json").read_text())
    assert final["steps"] == 4


@pytest.mark.slow
def test_compiled_step_trains(world, tmp_path):
    """The compiled step computes the same training as the eager one (same seed, same batches)."""
    eager = train(tiny_cfg(world, tmp_path, "eager", "train.max_steps=3"))
    compiled = train(tiny_cfg(world, tmp_path, "compiled", "train.max_steps=3", "train.compile=true"))
    assert compiled.completed
    assert compiled.final["valid"]["loss"] == pytest.approx(eager.final["valid"]["loss"], rel=1e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("packing", ["on", "off"])
def test_cuda_graphs_train_as_the_default_compiled_step(world, tmp_path, packing):
    """`train.compile_mode=reduce-overhead` replays the compiled step as CUDA graphs (2x faster for a small
    model's step on an H100, BENCHMARKS.md). The real loop validates, logs and saves between replays, where
    a graph's reused output buffers could be read after being overwritten: the run must compute the same
    training as the default mode. fp32 and no dropout, so the two differ only by summation order."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    common = ("run.device=cuda", "train.compile=true", f"train.packing={packing}", "train.precision=fp32",
              "model.dropout=0.0", "train.max_steps=12")
    base = train(tiny_cfg(world, tmp_path, f"default_{packing}", *common))
    graphs = train(tiny_cfg(world, tmp_path, f"graphs_{packing}", *common,
                            "train.compile_mode=reduce-overhead"))
    assert graphs.completed and graphs.final["steps"] == base.final["steps"] == 12
    for split in ("valid", "test"):
        assert graphs.final[split]["loss"] == pytest.approx(base.final[split]["loss"], rel=1e-3)


@pytest.mark.gpu
def test_cuda_graphs_run_resumes_as_the_run_never_stopped(world, tmp_path):
    """A run under CUDA graphs stopped at step 5 and resumed in a fresh compile ends where the run never
    stopped ends. The risk is graphs-specific: the resumed process captures new graphs over parameters and
    optimizer state loaded from state.pt, and a capture that kept the freshly initialised buffers would train
    on from the wrong point while the loss still looked sane. fp32, no dropout."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    common = ("run.device=cuda", "train.compile=true", "train.compile_mode=reduce-overhead",
              "train.precision=fp32", "model.dropout=0.0", "train.max_steps=12")
    full = train(tiny_cfg(world, tmp_path, "full", *common))
    part = train(tiny_cfg(world, tmp_path, "part", *common, "train.stop_after_steps=5"))
    assert not part.completed and load_state(part.run_dir)["counters"]["step"] == 5
    resumed = train(load(RunConfig, toml=part.run_dir / "config.toml"), resume=True)
    assert resumed.completed and resumed.final["steps"] == full.final["steps"] == 12
    assert resumed.final["best_step"] == full.final["best_step"]
    for split in ("valid", "test"):
        assert resumed.final[split]["loss"] == pytest.approx(full.final[split]["loss"], rel=1e-3)
    a, b = load_state(full.run_dir)["model"], load_state(resumed.run_dir)["model"]
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-3, atol=1e-4) for k in a)


def train_killed_between_saves(
    cfg: RunConfig, monkeypatch: pytest.MonkeyPatch, saves_at_3: bool = True
) -> None:
    """Train `cfg` until it is killed at its 8th step, with state.pt saved at step 3 only (unless
    `saves_at_3` is False: then where `cfg`'s own timer says), so the steps after the last save live only
    in memory: the kill that the resume tests (CPU and CUDA graphs) must recover from."""
    real_step = trainer.train_step

    def killed(rt, micro, n_global):
        if rt.counters.step == 7:  # the 8th step
            raise KeyboardInterrupt
        return real_step(rt, micro, n_global)

    monkeypatch.setattr(trainer, "train_step", killed)
    if saves_at_3:
        monkeypatch.setattr(trainer, "_state_due", lambda rt, stopping: stopping or rt.counters.step == 3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.undo()


@pytest.mark.gpu
def test_cuda_graphs_run_killed_between_saves_resumes_from_its_last_state(world, tmp_path, monkeypatch):
    """Killed at step 8 with state.pt from step 3, under CUDA graphs: the steps 4-7 that lived only in the
    graphs' static buffers are lost, state.pt and model.safetensors agree with each other, and the resumed
    run (fresh capture over the loaded state) ends where the run never killed ends. The CPU test of the same
    kill (tests/train/test_train_state_saves.py) cannot see a capture that kept stale buffers."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    common = ("run.device=cuda", "train.compile=true", "train.compile_mode=reduce-overhead",
              "train.precision=fp32", "model.dropout=0.0", "train.max_steps=10")
    full = train(tiny_cfg(world, tmp_path, "full", *common))
    train_killed_between_saves(tiny_cfg(world, tmp_path, "killed", *common), monkeypatch)
    state = load_state(tmp_path / "killed")  # also checks model.safetensors against meta.json
    assert state["counters"]["step"] == 3
    resumed = train(load(RunConfig, toml=tmp_path / "killed" / "config.toml"), resume=True)
    assert resumed.completed and resumed.final["steps"] == full.final["steps"] == 10
    assert resumed.final["best_step"] == full.final["best_step"]
    for split in ("valid", "test"):
        assert resumed.final[split]["loss"] == pytest.approx(full.final[split]["loss"], rel=1e-3)
    a, b = load_state(full.run_dir)["model"], load_state(resumed.run_dir)["model"]
    assert all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-3, atol=1e-4) for k in a)


def test_compile_mode_reaches_torch_compile(world, tmp_path, monkeypatch):
    modes = []

    def fake_compile(module, mode=None, **_):
        modes.append(mode)
        return module  # eager: this test is about the wiring, the slow test above compiles for real

    monkeypatch.setattr(torch, "compile", fake_compile)
    s = train(tiny_cfg(world, tmp_path, "mode", "train.max_steps=1", "train.compile=true",
                       "train.compile_mode=max-autotune-no-cudagraphs"))
    assert s.completed and modes == ["max-autotune-no-cudagraphs"]
    with pytest.raises(UserError, match="compile_mode"):
        tiny_cfg(world, tmp_path, "bad", "train.compile_mode=fast")


def test_paper_recipe_trains(world, tmp_path):
    s = train(tiny_cfg(world, tmp_path, "paper", "train.max_steps=3", recipe="paper"))
    cfg = load(RunConfig, toml=s.run_dir / "config.toml")
    assert (cfg.recipe, cfg.train.targets, cfg.model.norm, cfg.model.pooling) == (
        "paper",
        "last",
        "post",
        "sum",
    )
    meta = json.loads((s.run_dir / "meta.json").read_text())
    assert meta["model_config"]["field_max_len"] == {"title": 4, "brand": 2}
    assert s.final["steps"] == 3 and s.final["flops"]["per_target"] > 0


def test_max_minutes_stops_at_a_validation_and_finishes(world, tmp_path):
    """A spent wall-clock budget ends the run at the next validation with a complete result (best
    checkpoint scored on test), not a killed process; without a budget the same run goes on."""
    timed = train(tiny_cfg(world, tmp_path, "timed", "train.max_minutes=1e-9"))
    assert timed.completed and timed.final["stopped_by_time"] is True
    assert timed.final["steps"] == 3  # the first validation (eval.every_steps=3) of 6 steps
    assert set(timed.final["test"]) >= {"ndcg@10", "hr@10"}
    assert json.loads((timed.run_dir / "final.json").read_text())["stopped_by_time"] is True
    free = train(tiny_cfg(world, tmp_path, "free"))
    assert free.final["stopped_by_time"] is False and free.final["steps"] == 6
