"""Identification: a flat profile or a bound-touching CI flags an exponent in words, and nothing
built on a flagged exponent (compute-optimal allocation, impossible predictions) is reported."""

from __future__ import annotations

import numpy as np

from scalerec.scaling import identify, laws
from scalerec.scaling.fits import fit_metric, load_points


def _grid(size_effect: bool, noise: float = 0.01, seed: int = 0):
    rng = np.random.default_rng(seed)
    n, d = np.meshgrid(np.geomspace(3e4, 3e7, 5), np.geomspace(1e5, 1e7, 4))
    n, d = n.ravel(), d.ravel()
    y = 2.0 + 300 * d**-0.3 + (60 * n**-0.3 if size_effect else 0.0)
    return n, d, y * np.exp(rng.normal(0, noise, n.size))


def test_profile_is_flat_without_a_size_effect_and_sharp_with_one():
    for effect, flat in ((False, True), (True, False)):
        n, d, y = _grid(effect)
        fit = laws.fit_joint(n, d, y)
        prof = identify.profiles([n, d], y, fit)
        assert prof["alpha_N"]["flat"] is flat, (effect, prof["alpha_N"]["interval95"])
        assert prof["alpha_D"]["flat"] is False
    lo, hi = prof["alpha_N"]["interval95"]
    assert lo <= 0.3 <= hi and hi - lo < 0.5


def test_profile_check_reads_the_deviance_against_chi2():
    prof = {"grid": [0.0, 0.5, 1.0], "loss": [1.2, 1.0, 1.2]}
    # 10 points, 5 parameters: sigma^2 = 2 * 1.0 / 5 = 0.4, deviance at the ends = 2 * 0.2 / 0.4 = 1 < 3.84
    assert identify.profile_check(prof, 1.0, 10, 5)["flat"] is True
    prof["loss"] = [3.0, 1.0, 3.0]  # deviance 10 > 3.84
    out = identify.profile_check(prof, 1.0, 10, 5)
    assert out["flat"] is False and out["interval95"] == [0.5, 0.5]


def test_reasons_are_words_and_clean_estimates_pass():
    assert identify.exponent_reasons(0.3, [0.25, 0.35], {"flat": False}) == []
    reasons = identify.exponent_reasons(4.0, [0.0, 4.0], {"flat": True, "interval95": [0.0, 4.0]})
    assert len(reasons) == 3 and "bound" in reasons[0] and "flat" in reasons[2]


def test_an_interval_spanning_a_decade_is_not_a_measurement():
    """world_v5's NDCG alpha_N, 1.77 [0.0095, 1.95], passed the bound and profile tests."""
    wide = identify.exponent_reasons(1.77, [0.0095, 1.95], {"flat": False})
    assert len(wide) == 1 and "spans more than a factor of 10" in wide[0]
    assert identify.exponent_reasons(0.355, [0.349, 0.353], {"flat": False}) == []  # biased, still measured
    assert identify.exponent_reasons(0.05, [0.0051, 0.05], {"flat": False}) == []  # 9.8x: still measured
    # a bound-touching interval is reported once, as touching the bound, not also as wide
    bound = identify.exponent_reasons(0.3, [0.0, 0.5], {"flat": False})
    assert len(bound) == 1 and "reaches a bound" in bound[0]


def _rows(size_effect: bool) -> list[dict]:
    n, d, y = _grid(size_effect)
    return [
        {
            "run_id": f"r{i}",
            "size": f"s{np.log10(nn):.1f}",
            "subset": f"d{np.log10(dd):.1f}",
            "seed": 0,
            "status": "ok",
            "n_params_non_embedding": float(nn),
            "targets_seen": float(dd),
            "flops": 6 * nn * dd,
            "valid_loss": float(v),
            "valid_ndcg@10": float(1 - v / 20),
        }
        for i, (nn, dd, v) in enumerate(zip(n, d, y, strict=True))
    ]


def test_unidentified_size_exponent_omits_the_compute_optimal_allocation():
    m = fit_metric(load_points(_rows(False), "valid_loss", False), False, n_boot=20)
    assert m["joint"]["unidentified"] == ["alpha_N"]
    assert "alpha_N not identified" in m["compute_optimal"]["omitted"]
    assert "table" not in m["compute_optimal"] and "a" not in m["compute_optimal"]
    reasons = m["joint"]["identification"]["alpha_N"]["reasons"]
    assert any("profile likelihood is flat" in r for r in reasons)


def test_identified_law_reports_an_allocation_with_possible_values_only():
    m = fit_metric(load_points(_rows(True), "valid_ndcg@10", True), True, n_boot=20)
    assert m["joint"]["unidentified"] == []
    preds = [row["predicted"] for row in m["compute_optimal"]["table"]]
    assert all(0 < p <= 1 for p in preds)
