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


@pytest.mark.parametrize(
    "field, before, other", [("train.logits_precision", "fp32", "autocast"), ("train.z_loss", "0.0", "1e-4")]
)
def test_run_id_keeps_ids_from_before_an_added_field_and_separates_other_values(field, before, other):
    """A field added after sweeps were committed hashes, at the value that reproduces them, as the config
    did before it existed, so those sweeps stay adoptable (their golden ids:
    tests/scaling/test_scaling_fractions.py); any other value (bf16 logits, a z-loss) gets ids of its own.
    z_loss's default (auto) hashes as 0 did: the committed GPU sweeps, where the two differ, pin 0
    (`configs/sweeps/*.toml`)."""
    default = resolve_run_config(overrides=["data.dataset=x"])
    explicit = resolve_run_config(overrides=["data.dataset=x", f"{field}={before}"])
    changed = resolve_run_config(overrides=["data.dataset=x", f"{field}={other}"])
    assert build.run_id(default) == build.run_id(explicit) != build.run_id(changed)


@pytest.mark.parametrize(
    "sets, packed, low_precision, expected",
    [
        ([], True, True, build.AUTO_Z_LOSS),  # the one case that drifted: packed under bf16
        ([], False, True, 0.0),  # padded bf16 held its offset
        ([], True, False, 0.0),  # fp32 held it
        (["train.loss=bce"], True, True, 0.0),  # no softmax, no common offset to pin
        (["train.z_loss=0"], True, True, 0.0),  # an explicit value always wins
        (["train.z_loss=3e-4"], False, False, 3e-4),
        (["model.item_encoder=hybrid"], True, True, build.AUTO_Z_LOSS),
        (["model.item_encoder=id"], True, True, 0.0),  # packed ID-SASRec kept padded's accuracy without it
    ],
)
def test_auto_z_loss_is_on_only_for_packed_low_precision_softmax_text_runs(
    sets, packed, low_precision, expected
):
    cfg = resolve_run_config(overrides=["data.dataset=x", "train.loss=full", *sets])
    resolved = build.resolve_auto(cfg, 100, 10, packed=packed, low_precision=low_precision)
    assert resolved.train.z_loss == expected
    assert cfg.train.z_loss is None or sets  # the default is auto


def test_sweeps_run_on_the_gpu_pin_z_loss_to_what_their_runs_did():
    """Auto would give packed bf16 runs a z-loss that the committed GPU sweeps' runs did not have, under the
    same ids; each such sweep pins 0, so a later call adopts and extends them like for like."""
    from pathlib import Path

    from scalerec.scaling.spec import load_spec

    root = Path(__file__).resolve().parents[2] / "configs" / "sweeps"
    gpu = [p for p in sorted(root.glob("*.toml")) if load_spec(p).device == "cuda"]
    assert len(gpu) >= 10
    for path in gpu:
        assert load_spec(path).base["train"].get("z_loss") == 0.0, path.name


def test_z_loss_with_bce_is_refused_when_the_config_is_read():
    from scalerec.errors import UserError

    with pytest.raises(UserError, match="z_loss needs a softmax loss"):
        resolve_run_config(overrides=["data.dataset=x", "train.loss=bce", "train.z_loss=1e-4"])
