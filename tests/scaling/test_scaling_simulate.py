"""The CPU parametric bootstrap of a planned grid tells a plan that identifies alpha_N from one
that cannot, and measures noise from seed-to-seed spread."""

from __future__ import annotations

import numpy as np
import pytest

from scalerec.scaling.simulate import seed_noise, simulate

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
