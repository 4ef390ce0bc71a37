"""An early-stopped run's table row describes its best checkpoint (the weights its test used): the
loss of that validation and the targets / FLOPs / steps trained up to it — not the `patience` extra
checks after it, which would add compute and a worse loss to the point the fits see."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalerec.scaling.spec import SweepSpec, plan_runs
from scalerec.scaling.sweep import result_row


def _run(tmp_path: Path, stopped: bool, with_line: bool = True):
    sub = tmp_path / "ds" / "subsets" / "1K"
    sub.mkdir(parents=True, exist_ok=True)
    (sub / "card.json").write_text(json.dumps({"n_interactions": 1000, "n_users": 100, "n_items": 50}))
    spec = SweepSpec(dataset=str(tmp_path / "ds"), sizes=["tiny"], subsets=["1K"], seeds=[0], epochs=1.0,
                     base={"model": {"item_encoder": "id"}})
    run = plan_runs(spec, tmp_path / "out")[0]
    d = tmp_path / "out" / "runs" / run.run_id
    d.mkdir(parents=True)
    lines = [
        {"step": 10, "targets_seen": 1000, "flops": 6e9, "valid/loss": 5.0, "valid/ndcg@10": 0.10},
        {"step": 20, "targets_seen": 2000, "flops": 1.2e10, "valid/loss": 4.0, "valid/ndcg@10": 0.20},
        {"step": 30, "targets_seen": 3000, "flops": 1.8e10, "valid/loss": 4.5, "valid/ndcg@10": 0.15},
    ]
    if not with_line:
        lines = [lines[0], lines[2]]
    (d / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    final = {
        "params": {"total": 2000, "non_embedding": 1000}, "flops": {"per_target": 6e6, "total": 1.8e10},
        "targets_seen": 3000, "steps": 30, "epochs": 3.0, "unique_train_targets": 1000, "best_step": 20,
        "valid": {"loss": 4.0, "ndcg@10": 0.20}, "test": {"ndcg@10": 0.19}, "stopped_early": stopped,
    }
    (d / "final.json").write_text(json.dumps(final))
    return result_row(tmp_path / "out", run)


def test_an_early_stopped_row_is_its_best_checkpoint(tmp_path):
    row = _run(tmp_path, stopped=True)
    assert row["stopped_early"] is True
    assert (row["valid_loss"], row["valid_ndcg@10"]) == (4.0, 0.20)  # not the last check's 4.5
    assert (row["targets_seen"], row["flops"], row["steps"]) == (2000, 1.2e10, 20)
    assert row["unique_targets"] == 1000 and row["epochs"] == pytest.approx(2.0)


def test_a_run_that_ran_its_course_keeps_its_end_of_run_point(tmp_path):
    row = _run(tmp_path, stopped=False)
    assert row["stopped_early"] is False
    assert row["valid_loss"] == 4.5 and row["best_valid_loss"] == 4.0
    assert (row["targets_seen"], row["flops"], row["steps"]) == (3000, 1.8e10, 30)


def test_without_the_best_steps_line_the_end_of_run_counters_stand(tmp_path):
    row = _run(tmp_path, stopped=True, with_line=False)
    assert (row["targets_seen"], row["flops"]) == (3000, 1.8e10)
