"""The CPU parametric bootstrap of a planned grid tells a plan that identifies alpha_N from one
that cannot, measures noise from seed-to-seed spread, and runs item 4's extrapolation test on a plan."""

from __future__ import annotations

import numpy as np
import pytest

from scalerec.scaling.simulate import seed_noise, simulate, simulate_extrapolation

LAW = {"E": 2.0, "A_N": 60.0, "alpha_N": 0.3, "A_D": 300.0, "alpha_D": 0.3}


def test_a_wide_grid_with_low_noise_identifies_the_exponents():
    n, d = np.meshgrid(np.geomspace(3e4, 3e7, 5), np.geomspace(1e5, 1e8, 4))
    res = simulate(n.ravel(), d.ravel(), LAW, noise=0.001, reps=2, n_boot=10)
    s = res["summary"]
    assert s["alpha_N_identified_fraction"] == 1.0 and s["alpha_D_identified_fraction"] == 1.0
    assert s["alpha_N_median"] == pytest.approx(0.3, abs=0.05)
    assert s["E_rel_error_median"] < 0.05 and len(res["replicates"]) == 2


def test_a_narrow_noisy_grid_does_not():
    n, d = np.meshgrid([1e5, 1.3e5, 1.6e5], np.geomspace(1e5, 1e7, 4))
    res = simulate(n.ravel(), d.ravel(), LAW, noise=0.02, reps=2, n_boot=10)
    s = res["summary"]
    assert s["alpha_N_identified_fraction"] < 0.5 and not s["meets_bar"]


def test_seed_noise_pools_within_cell_spread():
    rows = [
        {"status": "ok", "size": "s", "subset": "a", "lr": 1e-3, "valid_loss": v}
        for v in (np.exp(0.0), np.exp(0.02))
    ]
    rows += [{"status": "ok", "size": "m", "subset": "a", "lr": 1e-3, "valid_loss": 5.0}]  # one seed: no info
    assert seed_noise(rows) == pytest.approx(np.std([0.0, 0.02], ddof=1))
    assert seed_noise(rows[2:]) is None


def _grid():
    n, d = np.meshgrid(np.geomspace(3e4, 3e6, 5), np.geomspace(1e6, 1e8, 4))
    return n.ravel(), d.ravel()


def test_a_held_out_run_far_beyond_the_grid_is_predicted_by_the_law_not_the_baselines():
    n, d = _grid()
    res = simulate_extrapolation(n, d, LAW, noise=0.001, holdout=[(1e7, 4e8)], reps=2, n_boot=10)
    s = res["summary"]
    assert s["law_beats_baselines_fraction"] == s["inside_fraction"] == s["bar_met_fraction"] == 1.0
    errors = s["mean_rel_error_median"]
    # at 3.3x N and 13x compute the size term still moves the loss: ignoring N, or copying the nearest
    # run, is off by much more than the law fitted on nearly noise-free runs
    assert errors["joint law L(N, D)"] < 0.01 < errors["D-only law L(D)"]
    assert errors["joint law L(N, D)"] < errors["nearest fitted run"]


def test_a_law_without_a_size_term_gives_the_law_no_edge():
    n, d = _grid()
    flat = {**LAW, "A_N": 0.0}
    res = simulate_extrapolation(n, d, flat, noise=0.01, holdout=[(1e7, 4e8)], reps=3, n_boot=10)
    # with nothing to learn from N, the D-only law is as good: the joint law cannot win every replicate
    # by a margin, and the errors of the two laws are of the same order
    e = res["summary"]["mean_rel_error_median"]
    assert e["D-only law L(D)"] < 3 * e["joint law L(N, D)"] + 0.01


def test_a_holdout_inside_the_fitted_range_is_refused():
    n, d = _grid()
    with pytest.raises(ValueError, match="beyond the fitted range"):
        simulate_extrapolation(n, d, LAW, noise=0.001, holdout=[(3e6, 1e8)], reps=1, n_boot=5)
