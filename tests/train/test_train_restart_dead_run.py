"""The accuracy benchmark restarts a run that died before its first checkpoint (issue 19).

On 2026-12-06 two of 18 side-by-side runs on one H100 hit CUDA OOM in their first epoch. They left a run
dir with `config.toml` and `metrics.jsonl` but no `state.pt`, and every later call of the benchmark
refused them ("already holds a run"), so the job never finished on its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_train_loop import tiny_cfg

from scalerec.errors import UserError
from scalerec.train import train

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from accuracy import restart_mode  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _dead_run(out: Path, name: str) -> Path:
    """What a run killed in its first epoch leaves: its config and a few metric lines, no state."""
    run = out / name
    run.mkdir(parents=True)
    (run / "config.toml").write_text("# written at start\n")
    (run / "metrics.jsonl").write_text('{"step": 2, "train/loss": 99.5}\n')
    return run


def test_a_run_dead_before_its_first_checkpoint_is_trained_again(world, tmp_path):
    run = _dead_run(tmp_path, "dead")
    cfg = tiny_cfg(world, tmp_path, "dead")
    with pytest.raises(UserError, match="already holds a run"):
        train(cfg)  # what the benchmark did before: the job stopped here at every call
    assert restart_mode(run) == {"overwrite": True}
    train(cfg, **restart_mode(run))
    assert (run / "final.json").is_file() and (run / "state.pt").is_file()
    assert '"train/loss": 99.5' not in (run / "metrics.jsonl").read_text()  # the dead run's lines are gone


def test_a_fresh_dir_trains_and_a_checkpointed_run_resumes(tmp_path):
    assert restart_mode(tmp_path / "new") == {"overwrite": False}
    run = tmp_path / "cut"
    run.mkdir()
    (run / "state.pt").write_bytes(b"")
    assert restart_mode(run) == {"resume": True}
