"""A law whose floor E sits on its bound 0 says so in words, beside its 'identified' exponent: the slope is
measured but is not an approach to an irreducible loss (pooled_v3's ID loss fit)."""

from __future__ import annotations

from pathlib import Path

from scalerec.io import read_json
from scalerec.scaling.fits import summary_lines
from scalerec.scaling.identify import floor_at_bound

POOLED_V3 = Path(__file__).resolve().parents[2] / "docs" / "results" / "pooled_v3" / "fits.json"


def _law(e: float, identified: bool) -> dict:
    return {
        "coef": {"E": e, "A_D": 20.0, "alpha_D": 0.07},
        "ci95": {"E": [0.0, 0.0 if e == 0 else 2 * e]},
        "identification": {"alpha_D": {"identified": identified, "reasons": [] if identified else ["flat"]}},
    }


def test_only_a_zero_floor_with_a_measured_exponent_gets_the_words() -> None:
    assert "alpha_D" in (floor_at_bound(_law(0.0, True)) or "")
    assert floor_at_bound(_law(1.5, True)) is None
    assert floor_at_bound(_law(0.0, False)) is None  # nothing identified: the flags already say why
    assert floor_at_bound({"skipped": "too few runs"}) is None


def test_the_committed_pooled_v3_fit_prints_it_for_id_loss_only() -> None:
    lines = summary_lines(read_json(POOLED_V3))
    floor = [line for line in lines if "floor E sits on its bound" in line]
    assert any(line.startswith("valid_loss:id:") for line in floor)
    assert not any(line.startswith("valid_loss:text:") for line in floor)  # E = 3.06 there
