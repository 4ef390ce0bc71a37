"""Metric values against hand-computed numbers, and the bootstrap interval's behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scalerec.eval.metrics import bootstrap_ci, metrics_from_ranks, metrics_with_ci


def test_metrics_hand_computed() -> None:
    ranks = [1, 2, 3, 11, 60]
    m = metrics_from_ranks(ranks, ks=(1, 5, 10, 50))
    assert m["hr@1"] == pytest.approx(1 / 5)
    assert m["hr@5"] == pytest.approx(3 / 5)
    assert m["hr@10"] == pytest.approx(3 / 5)
    assert m["hr@50"] == pytest.approx(4 / 5)
    assert m["ndcg@1"] == pytest.approx(1 / 5)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(4)) / 5)
    assert m["ndcg@50"] == pytest.approx((1 + 1 / math.log2(3) + 0.5 + 1 / math.log2(12)) / 5)
    assert m["mrr@5"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 5)
    assert m["mrr@50"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 11) / 5)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 11 + 1 / 60) / 5)


def test_metrics_accept_tensors_and_reject_rank_zero() -> None:
    assert metrics_from_ranks(torch.tensor([1, 1]))["ndcg@10"] == 1.0
    with pytest.raises(ValueError):
        metrics_from_ranks([0, 1])


def test_bootstrap_ci_contains_mean_and_shrinks_with_users() -> None:
    rng = np.random.default_rng(0)
    small = rng.integers(1, 40, size=200)
    large = rng.integers(1, 40, size=20000)
    lo_s, hi_s = bootstrap_ci(small, "ndcg@10", n_boot=300, seed=1)
    lo_l, hi_l = bootstrap_ci(large, "ndcg@10", n_boot=300, seed=1)
    assert lo_s <= metrics_from_ranks(small)["ndcg@10"] <= hi_s
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5
    # constant ranks: zero-width interval
    assert bootstrap_ci(np.full(50, 3), "hr@5", n_boot=50) == (1.0, 1.0)


def test_bootstrap_is_seeded_and_matches_normal_width() -> None:
    rng = np.random.default_rng(3)
    ranks = rng.integers(1, 30, size=5000)
    a = bootstrap_ci(ranks, ["hr@10", "mrr"], n_boot=400, seed=7)
    b = bootstrap_ci(ranks, ["hr@10", "mrr"], n_boot=400, seed=7)
    assert a == b
    p = metrics_from_ranks(ranks)["hr@10"]
    se = math.sqrt(p * (1 - p) / ranks.size)
    width = a["hr@10"][1] - a["hr@10"][0]
    assert width == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_metrics_with_ci_keys() -> None:
    out = metrics_with_ci([1, 2, 3], ks=(10,), n_boot=20)
    assert set(out) == {"ndcg@10", "hr@10", "mrr@10", "mrr"}
    assert set(out["mrr"]) == {"mean", "low", "high"}
    with pytest.raises(ValueError):
        bootstrap_ci([1, 2], "recall@x10")


def test_full_softmax_stats_reports_the_logit_offset_that_softmax_ignores() -> None:
    """Shifting every item's logit by the same amount leaves the loss alone and moves `logit_mean` by
    exactly that amount: the offset is what the stats expose, the spread is what the loss reads."""
    import torch

    from scalerec.eval.heldout import full_softmax_stats

    g = torch.Generator().manual_seed(0)
    users = torch.randn(5, 4, generator=g, dtype=torch.float64)
    items = torch.randn(9, 4, generator=g, dtype=torch.float64)
    targets = torch.tensor([1, 3, 8, 2, 5])
    base = full_softmax_stats(users, items, targets)
    # a fifth dimension: users carry 1, items carry c, so every logit gains exactly c
    ones, hundreds = torch.ones(5, 1, dtype=torch.float64), torch.full((9, 1), 100.0, dtype=torch.float64)
    shifted = full_softmax_stats(torch.cat([users, ones], 1), torch.cat([items, hundreds], 1), targets)
    assert shifted["loss"] == pytest.approx(base["loss"], rel=1e-9)
    assert shifted["logit_sd"] == pytest.approx(base["logit_sd"], rel=1e-9)
    assert shifted["logit_mean"] == pytest.approx(base["logit_mean"] + 100.0, rel=1e-9)
    logits = users @ items[1:].T
    assert base["logit_mean"] == pytest.approx(float(logits.mean()), rel=1e-9)
    assert base["user_norm"] == pytest.approx(float(users.norm(dim=1).mean()))
    assert base["item_norm"] == pytest.approx(float(items[1:].norm(dim=1).mean()))


def test_seed_interval_matches_the_t_formula_and_needs_two_seeds():
    from scipy import stats

    from scalerec.eval.metrics import seed_interval

    vals = [0.0539, 0.0509, 0.0521]
    lo, hi = seed_interval(vals)
    mean, sd = np.mean(vals), np.std(vals, ddof=1)
    half = stats.t.ppf(0.975, 2) * sd / np.sqrt(3)
    assert lo == pytest.approx(mean - half) and hi == pytest.approx(mean + half)
    assert hi - lo == pytest.approx(2 * 4.302653 * sd / np.sqrt(3), rel=1e-6)  # t(0.975, 2) by hand
    lo90, hi90 = seed_interval(vals, level=0.90)
    assert lo < lo90 < mean < hi90 < hi
    assert seed_interval([0.05]) is None and seed_interval([]) is None
