"""`train.save_state_s`: state.pt (and the best weights) written on a timer and where the run stops,
with the same results and a working resume."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from test_train_loop import tiny_cfg, train_killed_between_saves

from scalerec.config import load
from scalerec.train import checkpoint, train, trainer
from scalerec.train.checkpoint import load_state
from scalerec.train.config import RunConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def saves(monkeypatch):
    """Steps at which state.pt was written."""
    steps: list[int] = []
    real = checkpoint.save_state

    def record(run_dir, state):
        steps.append(state["counters"]["step"])
        real(run_dir, state)

    monkeypatch.setattr(checkpoint, "save_state", record)
    return steps


def _rt(every: float | None, age_s: float) -> SimpleNamespace:
    cfg = SimpleNamespace(train=SimpleNamespace(save_state_s=every))
    return SimpleNamespace(cfg=cfg, state_saved_at=time.perf_counter() - age_s, device=torch.device("cpu"))


def test_state_due_rule():
    assert trainer._state_due(_rt(60.0, 61.0), stopping=False)
    assert not trainer._state_due(_rt(60.0, 1.0), stopping=False)
    assert trainer._state_due(_rt(60.0, 1.0), stopping=True)  # the last step, early or time stop
    assert trainer._state_due(_rt(0.0, 0.0), stopping=False)  # 0 = every validation
    assert not trainer._state_due(_rt(None, 1e9), stopping=False)
    assert trainer._state_due(_rt(None, 0.0), stopping=True)


def test_state_written_on_timer_and_at_stops(world, tmp_path, saves):
    every = train(tiny_cfg(world, tmp_path, "every", "train.max_steps=10", "train.save_state_s=0"))
    assert saves == [3, 6, 9, 10]
    saves.clear()
    timed = train(tiny_cfg(world, tmp_path, "timed", "train.max_steps=10"))  # default 60 s: a tiny run
    assert saves == [10]
    saves.clear()
    part = train(tiny_cfg(world, tmp_path, "part", "train.max_steps=10", "train.stop_after_steps=7"))
    assert saves == [7] and load_state(part.run_dir)["counters"]["step"] == 7
    # same results whichever way state was saved: metrics, best step, weights on disk
    assert every.final["test"] == timed.final["test"] and every.final["valid"] == timed.final["valid"]
    assert every.final["best_step"] == timed.final["best_step"]
    a, b = (load_file(str(s.run_dir / "model.safetensors")) for s in (every, timed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_kill_between_saves(world, tmp_path, monkeypatch):
    """Killed at step 8 with state.pt from step 3 (the timer not due at step 6, whose weights were
    only in memory): the files on disk agree with each other and the resumed run is the run never
    stopped."""
    full = train(tiny_cfg(world, tmp_path, "full", "train.max_steps=10"))
    train_killed_between_saves(tiny_cfg(world, tmp_path, "killed", "train.max_steps=10"), monkeypatch)
    run = tmp_path / "killed"
    state = load_state(run)  # also checks model.safetensors against meta.json
    assert state["counters"]["step"] == 3 and full.final["best_step"] > 3
    resumed = train(load(RunConfig, toml=run / "config.toml"), resume=True)
    assert resumed.completed and resumed.final["test"] == full.final["test"]
    assert resumed.final["best_step"] == full.final["best_step"]
    a, b = load_state(full.run_dir)["model"], load_state(resumed.run_dir)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_state_written_between_validations_on_the_timer(world, tmp_path, saves, monkeypatch):
    """A run that validates only at its end (world_v6's trunks: eval.every_steps = 1e6) writes state.pt
    at log points on the timer, so a kill at its 8th step resumes from step 6, not from scratch; the
    resumed run is the run never stopped, and the extra writes change nothing."""
    args = ("train.max_steps=10", "eval.every_steps=1000", "train.save_state_s=1e-9")  # every log point
    full = train(tiny_cfg(world, tmp_path, "full", *args))
    assert saves == [2, 4, 6, 8, 10]
    plain = train(tiny_cfg(world, tmp_path, "plain", "train.max_steps=10", "eval.every_steps=1000"))
    assert plain.final["test"] == full.final["test"]
    train_killed_between_saves(tiny_cfg(world, tmp_path, "killed", *args), monkeypatch, saves_at_3=False)
    run = tmp_path / "killed"
    assert load_state(run)["counters"]["step"] == 6
    resumed = train(load(RunConfig, toml=run / "config.toml"), resume=True)
    assert resumed.completed and resumed.final["test"] == full.final["test"]
    a, b = load_state(full.run_dir)["model"], load_state(resumed.run_dir)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
