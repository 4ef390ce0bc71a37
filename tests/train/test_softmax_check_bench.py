"""The pure parts of benchmarks/softmax_check.py: each variant changes only the loss, negatives are
pooled_v2's fraction of the catalog, and the ratio line divides by the full-softmax run of the same
encoder."""

from __future__ import annotations

import pytest

from bench_scripts import load_script


def _bench():
    return load_script("benchmarks/softmax_check.py")


def test_negatives_are_pooled_v2s_fraction_of_the_catalog():
    b = _bench()
    assert b.scaled_negatives(63975) == 2048
    assert b.scaled_negatives(12101) == 387  # Amazon Beauty
    assert b.scaled_negatives(10) == 1  # never 0
    assert b.scaled_negatives(10, ref_negatives=100, ref_catalog=10) == 9  # never the whole catalog
    with pytest.raises(ValueError):
        b.scaled_negatives(1)


def test_variants_differ_only_in_the_loss_keys():
    b = _bench()
    assert b.variant_overrides("full", 387) == ["train.loss=full"]
    sampled, uniform = b.variant_overrides("sampled", 387), b.variant_overrides("uniform", 387)
    assert "train.loss=sampled" in sampled and "train.negatives=387" in sampled
    assert "train.sampler=popularity" in sampled and "train.logq=true" in sampled
    assert set(sampled) ^ set(uniform) == {"train.sampler=popularity", "train.sampler=uniform"}
    with pytest.raises(ValueError):
        b.variant_overrides("bce", 387)


def test_schedule_is_pooled_v2s_wsd_run():
    sets = _bench().schedule_overrides(100, 256, 3e-3)
    assert "train.max_steps=100" in sets and "train.batch_size=256" in sets and "train.lr=0.003" in sets
    assert "train.schedule=wsd" in sets and "train.decay_steps=20" in sets and "train.warmup_steps=10" in sets
    with pytest.raises(ValueError):
        _bench().schedule_overrides(11, 256, 3e-3)


def test_cli_arguments_become_lists_and_unknown_variants_are_refused():
    b = _bench()
    args = b.parse_args(["--encoders", "id,text", "--variants", "full,uniform", "--steps", "50"])
    assert args.encoders == ["id", "text"] and args.variants == ["full", "uniform"] and args.steps == 50
    with pytest.raises(ValueError):
        b.parse_args(["--variants", "full,nce"])


def test_ratio_divides_by_the_full_run_of_the_same_encoder():
    rows = [
        {"encoder": "id", "variant": "full", "valid_ce": 8.0, "valid_ndcg10": 0.02},
        {"encoder": "id", "variant": "sampled", "valid_ce": 10.0, "valid_ndcg10": 0.01},
        {"encoder": "text", "variant": "full", "valid_ce": 9.0, "valid_ndcg10": 0.04},
        {"encoder": "text", "variant": "uniform", "valid_ce": 9.0, "valid_ndcg10": 0.05},
        {"encoder": "hybrid", "variant": "sampled", "valid_ce": 9.0, "valid_ndcg10": 0.05},  # no full run
    ]
    out = _bench().ratios(rows)
    assert [(r["encoder"], r["variant"]) for r in out] == [("id", "sampled"), ("text", "uniform")]
    assert out[0]["valid_ce_ratio"] == pytest.approx(1.25)
    assert out[0]["valid_ce_diff_nats"] == pytest.approx(2.0)
    assert out[0]["valid_ndcg10_ratio"] == pytest.approx(0.5)
    assert out[1]["valid_ce_ratio"] == pytest.approx(1.0)
    assert out[1]["valid_ndcg10_ratio"] == pytest.approx(1.25)
