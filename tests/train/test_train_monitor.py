"""`eval.monitor`: the validation metric that picks the best checkpoint and stops the run. A study of
validation loss stops and selects on loss; by default (NDCG@10) nothing changes, run ids included."""

from __future__ import annotations

import json

import pytest
from test_train_loop import tiny_cfg

from scalerec.train import build, train
from scalerec.train.config import EvalConfig, resolve_run_config
from scalerec.train.trainer import monitored_score

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _valid(run_dir) -> list[dict]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if "valid/loss" in x]


def _run(world, tmp_path, name, *extra):
    # LR 1e-2 on the tiny world: validation NDCG@10 peaks at step 14, loss at 16 (seed 0)
    return train(
        tiny_cfg(
            world, tmp_path, name, "train.max_steps=16", "eval.every_steps=1", "eval.patience=0",
            "train.lr=1e-2", "model.dropout=0.0", *extra,
        )
    )


def test_the_best_checkpoint_is_the_best_value_of_the_monitored_metric(world, tmp_path):
    by_loss = _run(world, tmp_path, "loss", "eval.monitor=loss")
    by_ndcg = _run(world, tmp_path, "ndcg")  # the default
    v = _valid(by_loss.run_dir)
    assert [x["valid/loss"] for x in v] == [x["valid/loss"] for x in _valid(by_ndcg.run_dir)]  # same run
    best_loss = min(v, key=lambda x: x["valid/loss"])["step"]
    best_ndcg = max(v, key=lambda x: x["valid/ndcg@10"])["step"]  # max: the first of ties, as the loop keeps
    assert best_loss != best_ndcg  # else this test could not tell the two apart
    assert by_loss.final["best_step"] == best_loss
    assert by_ndcg.final["best_step"] == best_ndcg
    assert by_loss.final["valid"]["loss"] == pytest.approx(min(x["valid/loss"] for x in v))


def test_patience_counts_validations_without_a_lower_loss(world, tmp_path):
    # at LR 1e-2 loss rises at validations 2 and 3 while NDCG@10 still climbs (it would stop at step 5)
    s = _run(world, tmp_path, "stop", "eval.monitor=loss", "eval.patience=2")
    v = _valid(s.run_dir)
    losses = [x["valid/loss"] for x in v]
    best = losses.index(min(losses))
    assert s.final["stopped_early"] and s.final["best_step"] == v[best]["step"]
    assert len(losses) == best + 3  # the best, then exactly two validations without a lower loss


def test_monitor_names_a_metric_the_validation_computes():
    assert monitored_score({"loss": 9.5, "ndcg@10": 0.1}, "loss") == -9.5
    assert monitored_score({"loss": 9.5, "hr@5": 0.2}, "hr@5") == 0.2
    for ok in ("loss", "mrr", "ndcg@10", "hr@1", "mrr@50"):
        EvalConfig(monitor=ok)
    for bad in ("ndcg@7", "auc", "ndcg", "loss@10"):
        with pytest.raises(ValueError, match="eval.monitor"):
            EvalConfig(monitor=bad)


def test_the_default_monitor_keeps_run_ids_and_another_gets_its_own():
    default = resolve_run_config(overrides=["data.dataset=x"])
    explicit = resolve_run_config(overrides=["data.dataset=x", "eval.monitor=ndcg@10"])
    other = resolve_run_config(overrides=["data.dataset=x", "eval.monitor=loss"])
    assert build.run_id(default) == build.run_id(explicit) != build.run_id(other)
