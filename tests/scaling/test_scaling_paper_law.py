"""The paper's NDCG@5 = a·D^b on hand-made tables: the envelope is chosen on validation (never on
test), D values within 1% are one D, the OLS interval matches scipy's regression, seeds bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from scalerec.scaling.paper_law import PAPER_COLUMN, fit_paper_law, has_column, summary_line

DS = [1e4, 1e5, 1e6, 1e7]


def _row(size: str, subset: str, seed: int, d: float, valid: float, paper: float, **extra) -> dict:
    return {
        "run_id": f"{size}-{subset}-{seed}",
        "status": "ok",
        "encoder": "text",
        "size": size,
        "subset": subset,
        "seed": seed,
        "unique_targets": d,
        "steps": d / 100,  # a WSD sweep's smaller D is also a shorter run: recorded beside each point
        "valid_ndcg@10": valid,
        PAPER_COLUMN: paper,
        "lr_selected": True,
        "holdout": False,
        **extra,
    }


def _table(eps: float = 0.0) -> list[dict]:
    """`big` wins validation everywhere and follows 0.02·D^0.1 on test (seeds ×(1 ± eps), so the mean
    is exact); `small` loses validation but is better on test, with a steeper 0.05·D^0.3: a fit that
    chose on test would report b = 0.3."""
    rows = []
    for k, d in enumerate(DS):
        for seed, sign in enumerate((1, -1)):
            f = 1 + sign * eps
            rows.append(_row("big", f"d{k}", seed, d, 0.1 + 0.01 * k, 0.02 * d**0.1 * f))
            rows.append(_row("small", f"d{k}", seed, d, 0.05 + 0.01 * k, 0.05 * d**0.3 * f))
    # ignored: an LR loser and a held-out run, best on validation and test
    rows.append(_row("big", "d0", 0, DS[0], 0.9, 0.9, lr_selected=False))
    rows.append(_row("huge", "d0", 0, DS[0], 0.9, 0.9, holdout=True))
    return rows


def test_envelope_is_chosen_on_validation_and_fits_the_law_exactly() -> None:
    out = fit_paper_law(_table(), "text", n_boot=20)
    assert [p["size"] for p in out["points"]] == ["big"] * 4
    assert [p["steps"] for p in out["points"]] == [d / 100 for d in DS] and out["points"][0]["epochs"] is None
    assert out["b"] == pytest.approx(0.1, abs=1e-9) and out["a"] == pytest.approx(0.02, rel=1e-9)
    assert out["n_points"] == 4 and out["r2_log"] == pytest.approx(1.0)
    assert out["ci95"]["b"][0] == pytest.approx(0.1) and out["ci95"]["b"][1] == pytest.approx(0.1)
    assert out["paper"]["b"] == 0.094 and out["selected_on"] == "valid_ndcg@10"


def test_same_d_within_one_percent_is_one_point_best_on_validation() -> None:
    rows = _table()
    # a second training length of the largest D (D differs by 0.5%): better validation, test off the law
    rows += [_row("big", "d3-long", s, DS[3] * 1.005, 0.5, 0.5) for s in (0, 1)]
    out = fit_paper_law(rows, "text", n_boot=0)
    assert out["n_points"] == 4
    last = out["points"][-1]
    assert last["subset"] == "d3-long" and last["candidates"] == 3 and last[PAPER_COLUMN] == 0.5
    assert out["ci95"] == {}


def test_ols_interval_matches_scipy_and_bootstrap_covers_the_slope() -> None:
    rows = _table(eps=0.05)
    wobble = [1.0, 1.1, 0.95, 1.02]  # lack of fit on the envelope, so the OLS interval has width
    for r in rows:
        if r["size"] == "big" and r["subset"][1:].isdigit():
            r[PAPER_COLUMN] *= wobble[int(r["subset"][1:])]
    out = fit_paper_law(rows, "text", n_boot=200)
    y = np.array([0.02 * d**0.1 * w for d, w in zip(DS, wobble, strict=True)])
    ref = stats.linregress(np.log(DS), np.log(y))
    t = stats.t.ppf(0.975, len(DS) - 2)
    assert out["b"] == pytest.approx(ref.slope)
    assert out["ci95_ols"]["b"] == pytest.approx([ref.slope - t * ref.stderr, ref.slope + t * ref.stderr])
    lo, hi = out["ci95"]["b"]
    assert lo < out["b"] < hi and hi - lo > 1e-3  # seed noise of ±5% widens it


def test_fewer_than_two_d_values_is_skipped_and_a_table_without_the_column_has_none() -> None:
    rows = [r for r in _table() if r["subset"] == "d0"]
    out = fit_paper_law(rows, "text")
    assert "need >= 2" in out["skipped"] and "skipped" in summary_line(out)
    assert has_column(rows) is True
    assert has_column([{k: v for k, v in r.items() if k != PAPER_COLUMN} for r in rows]) is False


def test_summary_line_names_both_intervals_and_the_paper() -> None:
    line = summary_line(fit_paper_law(_table(eps=0.05), "text", n_boot=50))
    assert line.startswith(f"paper metric ({PAPER_COLUMN}, text): NDCG@5 = 0.02·D^0.100 [")
    assert "seed bootstrap" in line and "paper: 0.027·D^0.094" in line
    assert not math.isnan(float(line.split("R² ")[1].split(";")[0]))
