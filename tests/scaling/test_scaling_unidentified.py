"""Exponents pinned to the fitter's bound or with a CI down to zero are flagged, not presented."""

from __future__ import annotations

from scalerec.scaling.fits import unidentified_exponents
from scalerec.scaling.laws import MAX_EXPONENT


def test_flags_bound_and_zero_ci_but_not_a_clean_estimate() -> None:
    entry = {
        "coef": {"E": 1.0, "alpha_N": 0.34, "alpha_D": 0.28},
        "ci95": {"alpha_N": [0.30, 0.38], "alpha_D": [0.25, 0.31]},
    }
    assert unidentified_exponents(entry) == []
    entry["ci95"]["alpha_N"] = [0.01, MAX_EXPONENT]
    assert unidentified_exponents(entry) == ["alpha_N"]
    entry["coef"]["alpha_D"], entry["ci95"]["alpha_D"] = 0.2, [0.0, 0.4]
    assert unidentified_exponents(entry) == ["alpha_N", "alpha_D"]
