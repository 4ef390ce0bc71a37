"""Issue 23 item 7: one default MLflow store, tags to find runs, honest end status (FINISHED /
FAILED / KILLED), a resume that continues the same MLflow run, and optional TensorBoard event
files. (Fine-tuning runs: tests/transfer/test_transfer_usability.py.)"""

from __future__ import annotations

import json
import os
import signal
import sys
import types

import pytest
from test_train_loop import tiny_cfg

from scalerec.config import load
from scalerec.errors import UserError
from scalerec.train import train
from scalerec.train.config import RunConfig
from scalerec.train.mlflow_tracker import RUN_FILE, default_tracking_uri

mlflow = pytest.importorskip("mlflow")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _client(root):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=default_tracking_uri(root), registry_uri="file:///dev/null")


def _run(root, run_dir):
    run_id = json.loads((run_dir / RUN_FILE).read_text())["run_id"]
    return _client(root).get_run(run_id)


def tracked(world, out, name, *extra):
    return tiny_cfg(world, out, name, "run.tracking_uri=none", *extra)


def test_default_store_is_the_file_store_even_with_sqlalchemy(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlalchemy", types.ModuleType("sqlalchemy"))
    assert default_tracking_uri(tmp_path) == (tmp_path.resolve() / "mlruns").as_uri()


def test_finished_run_is_tagged(world, tmp_path):
    s = train(tracked(world, tmp_path, "tagged", "train.max_steps=2", "run.seed=3"))
    run = _run(tmp_path, s.run_dir)
    tags = run.data.tags
    assert run.info.status == "FINISHED" and (tmp_path / "mlruns").is_dir()
    assert (tags["dataset"], tags["size"], tags["encoder"], tags["recipe"], tags["seed"]) == (
        "data", "tiny", "text", "default", "3")
    assert tags["git_commit"] and tags["kind"] == "train" and tags["loss"] == "full"
    assert "test/ndcg_at_10" in run.data.metrics


def test_failed_run_is_marked_failed(world, tmp_path):
    with pytest.raises(UserError):
        train(tracked(world, tmp_path, "diverged", "train.temperature=1e-7", "train.loss=sampled"))
    assert _run(tmp_path, tmp_path / "diverged").info.status == "FAILED"


def test_sigterm_marks_the_run_killed(world, tmp_path, monkeypatch):
    from scalerec.train import trainer

    real, calls = trainer.train_step, []

    def step_then_sigterm(rt, micro, n):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(rt, micro, n)

    monkeypatch.setattr(trainer, "train_step", step_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        train(tracked(world, tmp_path, "terminated", "train.max_steps=50"))
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored
    assert _run(tmp_path, tmp_path / "terminated").info.status == "KILLED"


def test_resume_continues_the_same_mlflow_run(world, tmp_path):
    part = train(tracked(world, tmp_path, "resumed", "train.max_steps=6", "train.stop_after_steps=3"))
    first = _run(tmp_path, part.run_dir)
    assert first.info.status == "KILLED"
    resumed = train(load(RunConfig, toml=part.run_dir / "config.toml"), resume=True)
    again = _run(tmp_path, resumed.run_dir)
    assert again.info.run_id == first.info.run_id and again.info.status == "FINISHED"
    steps = {m.step for m in _client(tmp_path).get_metric_history(again.info.run_id, "train/loss")}
    assert steps == {2, 4, 6}  # log_every=2: step 2 before the stop, 4 and 6 after the resume
    runs = _client(tmp_path).search_runs([again.info.experiment_id])
    assert len([r for r in runs if r.info.run_name == "resumed"]) == 1


def test_tensorboard_event_files(world, tmp_path):
    pytest.importorskip("tensorboard")
    s = train(tiny_cfg(world, tmp_path, "tb", "run.tensorboard=true", "train.max_steps=2"))
    events = list((s.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(s.run_dir / "tensorboard"))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"] and "test/ndcg@10" in acc.Tags()["scalars"]
