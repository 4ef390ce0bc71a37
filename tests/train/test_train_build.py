"""Run budget precedence, per-layer LR groups and run ids (pure functions, no training)."""

from __future__ import annotations

import pytest

from scalerec.model import SequentialRecommender
from scalerec.train import build
from scalerec.train.config import resolve_run_config


def test_budget_precedence():
    def steps(*over):
        cfg = resolve_run_config(overrides=["data.dataset=x", "train.grad_accum=2", *over])
        return build.budget(cfg, n_batches_per_epoch=10, targets_per_epoch=1000, fpt=2.0).total_steps

    assert steps("train.epochs=3") == 15  # 5 optimizer steps per epoch
    assert steps("train.epochs=3", "train.max_steps=7") == 7
    assert steps("train.max_steps=7", "train.max_targets=450") == 3  # 200 targets per step
    assert steps("train.max_targets=450", "train.max_flops=4000") == 10  # 2000 targets


def test_layer_lr_decay_groups():
    cfg = resolve_run_config(
        overrides=[
            "data.dataset=x",
            "train.layer_lr_decay=0.5",
            "train.lr=1.0",
            "model.item_encoder=id",
            "model.n_items=10",
        ],
        size="tiny",
    )
    model = SequentialRecommender(cfg.model)
    lr_of = {}
    for group in build.param_groups(model, cfg):
        for p in group["params"]:
            lr_of[id(p)] = group["lr"]
    named = dict(model.named_parameters())
    assert lr_of[id(named["transformer.layers.1.mlp.fc.weight"])] == pytest.approx(1.0)
    assert lr_of[id(named["transformer.layers.0.mlp.fc.weight"])] == pytest.approx(0.5)
    assert lr_of[id(named["item_encoder.emb.weight"])] == pytest.approx(0.25)
    assert lr_of[id(named["norm.weight"])] == pytest.approx(1.0)
    assert len(lr_of) == sum(1 for _ in model.parameters())


def test_run_id_ignores_where_the_run_goes():
    a = resolve_run_config(overrides=["data.dataset=x", "run.out=a", "run.name=n1"])
    b = resolve_run_config(
        overrides=["data.dataset=x", "run.out=b", "run.name=n2", "train.stop_after_steps=3"]
    )
    c = resolve_run_config(overrides=["data.dataset=x", "train.lr=0.5"])
    assert build.run_id(a) == build.run_id(b) != build.run_id(c)


def test_run_id_keeps_ids_from_before_logits_precision_and_separates_bf16_logits():
    """The default (fp32 logits) hashes as the config did before the field existed, so committed sweeps
    stay adoptable (their golden ids: tests/scaling/test_scaling_fractions.py); "autocast" differs."""
    default = resolve_run_config(overrides=["data.dataset=x"])
    explicit = resolve_run_config(overrides=["data.dataset=x", "train.logits_precision=fp32"])
    bf16 = resolve_run_config(overrides=["data.dataset=x", "train.logits_precision=autocast"])
    assert build.run_id(default) == build.run_id(explicit) != build.run_id(bf16)
