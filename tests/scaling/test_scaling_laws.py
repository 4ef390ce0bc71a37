"""The fitter must recover known laws from noisy points, cover the truth with its CIs, and
extrapolate clean data; the compute-optimal algebra must match a brute-force minimisation."""

from __future__ import annotations

import numpy as np
import pytest

from scalerec.scaling.laws import bootstrap_law, fit_joint, fit_law, fit_plain_power
from scalerec.scaling.optimal import (
    FlopsRelation,
    best_per_group,
    extrapolation_check,
    fit_flops_relation,
    frontier,
    optimal_allocation,
    optimal_exponents,
)

TRUE = {"E": 1.5, "A_N": 400.0, "alpha_N": 0.34, "A_D": 410.0, "alpha_D": 0.28}


def _grid(noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    n, d = np.meshgrid(np.geomspace(1e4, 1e7, 6), np.geomspace(1e5, 1e8, 5))
    n, d = n.ravel(), d.ravel()
    y = TRUE["E"] + TRUE["A_N"] * n ** -TRUE["alpha_N"] + TRUE["A_D"] * d ** -TRUE["alpha_D"]
    return n, d, y * np.exp(rng.normal(0.0, noise, y.size))


@pytest.fixture(scope="module")
def noisy_fit():
    n, d, y = _grid(noise=0.002)
    fit = fit_joint(n, d, y)
    bootstrap_law(fit, [n, d], y, n_boot=40, seed=1)
    return fit


def test_joint_fit_recovers_coefficients_within_5_percent(noisy_fit):
    for key, true in TRUE.items():
        assert noisy_fit.coef[key] == pytest.approx(true, rel=0.05), key


def test_bootstrap_intervals_cover_the_truth(noisy_fit):
    for key in ("E", "alpha_N", "alpha_D"):
        lo, hi = noisy_fit.ci[key]
        assert lo <= TRUE[key] <= hi, (key, lo, hi)
        assert lo < noisy_fit.coef[key] * 1.001 and hi > noisy_fit.coef[key] * 0.999
    assert noisy_fit.n_boot >= 35


def test_univariate_law_with_irreducible_term():
    x = np.geomspace(1e3, 1e8, 12)
    y = 2.0 + 50.0 * x**-0.3
    fit = fit_law([x], y, ("C",))
    assert abs(fit.E - 2.0) < 2e-3
    assert fit.alpha[0] == pytest.approx(0.3, rel=1e-3)
    assert np.allclose(fit.predict(x), y, rtol=1e-4)


def test_plain_power_law_matches_paper_form():
    x = np.geomspace(1e5, 1e7, 5)
    fit = fit_plain_power(x, 0.027 * x**0.094, "D", n_boot=20)
    assert fit.a == pytest.approx(0.027, rel=1e-6) and fit.b == pytest.approx(0.094, rel=1e-6)
    assert fit.r2 == pytest.approx(1.0)


def test_fit_rejects_too_few_points():
    with pytest.raises(ValueError, match="at least 5"):
        fit_joint(np.array([1e4, 1e5]), np.array([1e5, 1e6]), np.array([3.0, 2.0]))


def test_extrapolation_on_clean_data_is_accurate():
    n, d, y = _grid(noise=0.0)
    c = 6.0 * n * d
    out = extrapolation_check(n, d, c, y, holdout_frac=0.2)
    assert out["n_heldout"] == 6 and out["n_fit"] == 24
    assert out["mean_rel_error"] < 1e-3
    assert min(c[out["heldout_index"]]) >= out["cutoff_flops"] > max(np.delete(c, out["heldout_index"]))


def test_extrapolation_of_higher_is_better_metric_uses_error_form():
    n, d, err = _grid(noise=0.0)
    ndcg = 1.0 - err / 10.0
    out = extrapolation_check(n, d, 6 * n * d, ndcg, higher_is_better=True)
    assert out["mean_rel_error"] < 1e-3


def test_compute_optimal_matches_brute_force():
    n, d, y = _grid(noise=0.0)
    fit = fit_joint(n, d, y)
    rel = FlopsRelation(k=6.0, gamma=1.0, r2=1.0)
    a, b = optimal_exponents(fit, rel)
    assert a + b == pytest.approx(1.0)
    assert a == pytest.approx(0.28 / (0.34 + 0.28), rel=0.02)
    budget = 1e16
    grid = np.geomspace(1e3, 1e10, 20001)
    # brute-force reference: the law along the budget, D = C / (k N^gamma) for every N of the grid
    n_brute = grid[np.argmin(fit.predict(grid, budget / (rel.k * grid**rel.gamma)))]
    opt = optimal_allocation(fit, rel, np.array([budget]))
    assert opt["n"][0] == pytest.approx(n_brute, rel=0.01)
    assert 6.0 * opt["n"][0] * opt["d"][0] == pytest.approx(budget)


def test_flops_relation_recovers_k_and_gamma():
    n = np.array([1e4, 1e5, 1e6, 1e7, 1e5])
    d = np.array([1e6, 1e6, 1e7, 1e5, 1e8])
    rel = fit_flops_relation(n, d, 8.0 * n**0.9 * d)
    assert rel.k == pytest.approx(8.0, rel=1e-6) and rel.gamma == pytest.approx(0.9, rel=1e-6)


def test_frontier_and_best_per_group():
    c = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([5.0, 6.0, 4.0, 4.5, 3.0])
    assert frontier(c, y).tolist() == [0, 2, 4]
    assert frontier(c, -y, lower_is_better=False).tolist() == [0, 2, 4]
    groups = np.array([1, 1, 2, 2, 2])
    assert best_per_group(groups, y).tolist() == [0, 4]
