"""Issue 23 items 4-5: progress that moves with time, loss lines at a steady rate when piped, and
small-data defaults (full softmax on a small catalog, log_every scaled to the epoch)."""

from __future__ import annotations

import io
import json
import time

import pytest
from test_train_loop import tiny_cfg

from scalerec.config import load
from scalerec.runlog import LogClock, ProgressBar
from scalerec.train import build, train
from scalerec.train.config import RunConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _lines(run) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_auto_loss_is_full_on_a_small_catalog_and_recorded(world, tmp_path):
    s = train(tiny_cfg(world, tmp_path, "small", "train.loss=auto", "train.max_steps=2"))
    cfg = load(RunConfig, toml=s.run_dir / "config.toml")
    assert cfg.train.loss == "full"  # 40 items <= 100K: the resolved choice is what config.toml says
    s = train(
        tiny_cfg(
            world, tmp_path, "big", "train.loss=auto", "train.max_steps=2", "train.full_softmax_max_items=10"
        )
    )
    assert load(RunConfig, toml=s.run_dir / "config.toml").train.loss == "sampled"


def test_default_loss_is_auto():
    assert RunConfig().train.loss == "auto" and RunConfig().train.log_every == 0


def test_run_id_and_name_do_not_change_when_auto_values_resolve(world, tmp_path):
    cfg = tiny_cfg(world, tmp_path, "", "train.loss=auto", "train.max_steps=2")
    s = train(cfg)
    assert s.run_dir.name == build.run_id(cfg) == s.final["run_id"]


def test_log_every_scales_to_the_epoch(world, tmp_path):
    assert [build.auto_log_every(n) for n in (1, 19, 200, 5000)] == [1, 1, 20, 50]
    s = train(tiny_cfg(world, tmp_path, "auto", "train.log_every=0", "train.max_steps=4"))
    cfg = load(RunConfig, toml=s.run_dir / "config.toml")
    assert cfg.train.log_every == 1  # 4 batches per epoch -> log every step
    assert [x["step"] for x in _lines(s.run_dir) if "train/loss" in x] == [1, 2, 3, 4]


def test_train_loss_points_at_a_steady_time_rate(world, tmp_path):
    """log_every far beyond the run: only the time trigger (log_seconds) can write these points."""
    s = train(
        tiny_cfg(
            world, tmp_path, "timed", "train.log_every=1000", "train.log_seconds=1e-9", "train.max_steps=5"
        )
    )
    assert [x["step"] for x in _lines(s.run_dir) if "train/loss" in x] == [1, 2, 3, 4, 5]
    s = train(
        tiny_cfg(
            world, tmp_path, "untimed", "train.log_every=1000", "train.log_seconds=1e9", "train.max_steps=5"
        )
    )
    assert [x["step"] for x in _lines(s.run_dir) if "train/loss" in x] == [5]


def test_piped_output_prints_the_loss(world, tmp_path, capsys):
    """With the bar requested but stderr not a terminal (a log file), loss lines are printed."""
    train(tiny_cfg(world, tmp_path, "piped", "run.progress=true", "train.log_every=1", "train.max_steps=3"))
    out = capsys.readouterr().out
    assert out.count("train/loss") == 3 and "valid/ndcg@10" in out


def test_log_clock():
    clock = LogClock(every=10, seconds=1e9, timed=True)
    assert [s for s in range(1, 31) if clock.due(s)] == [10, 20, 30]
    clock = LogClock(every=10, seconds=0.0, timed=False)  # DDP: ranks must agree, steps only
    assert not clock.due(3) and clock.due(10)
    clock = LogClock(every=1000, seconds=0.01, timed=True, step=4)
    time.sleep(0.02)
    assert clock.due(7)
    seconds, first = clock.lap(7)
    assert seconds >= 0.01 and first == 5 and not clock.due(8)


def test_bar_advances_every_step_on_a_terminal():
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True)
    bar = ProgressBar(10, True, console=console)
    assert bar.enabled
    for step in range(1, 4):
        bar.advance(step)
    bar.phase("valid")
    task = bar.progress.tasks[0]
    assert task.completed == 3 and task.description == "valid"
    bar.close()
    assert not ProgressBar(10, True, console=Console(file=io.StringIO(), force_terminal=False)).enabled
