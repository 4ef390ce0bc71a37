"""Fits of a v2 results table (`scaling.table`'s contract): per-encoder cells, only LR winners,
holdout never fitted, D = unique_targets, seed-spread weights, the known-floor check."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from scalerec.scaling import cells
from scalerec.scaling.fits import fit, summary_lines
from scalerec.scaling.report import report
from scalerec.scaling.sweep import upsert_results

FLOOR = 2.0
EVAL_FLOOR = 2.004  # the evaluation users' own floor: a finite sample sits a little off the analytical one
LAWS = {"text": (50.0, 0.3), "id": (30.0, 0.5)}  # (A_N, alpha_N); both share B/D^0.25 and E = FLOOR
SIZES = {"s1": 1e5, "s2": 3e5, "s3": 1e6, "s4": 3e6}
SUBSETS = {"d1": 1e6, "d2": 3e6, "d3": 1e7, "d4": 3e7}


def _loss(enc: str, n: float, d: float) -> float:
    a, alpha = LAWS[enc]
    return FLOOR + a * n**-alpha + 80.0 * d**-0.25


def _row(enc: str, size: str, subset: str, seed: int, lr: float, loss: float, **extra) -> dict:
    n, d = SIZES.get(size, 3e7), SUBSETS[subset]
    return {
        "run_id": f"{enc}-{size}-{subset}-{seed}-{lr}",
        "status": "ok",
        "encoder": enc,
        "size": size,
        "subset": subset,
        "seed": seed,
        "lr": lr,
        "lr_grid": "0.001,0.003,0.01",
        "n_params_non_embedding": n,
        "unique_targets": d,
        "targets_seen": 3 * d,  # three epochs: D must be unique_targets, not this
        "flops": 6 * n * 3 * d,
        "valid_loss": loss,
        "lr_selected": True,
        "lr_at_edge": False,
        "holdout": False,
        "n_seeds": 1,
        "seed_std_valid_loss": None,
        "bayes_floor": FLOOR,
        "eval_floor": EVAL_FLOOR,
        **extra,
    }


def _table(tmp_path: Path) -> Path:
    rows = []
    for enc, size, subset in itertools.product(LAWS, SIZES, SUBSETS):
        y = _loss(enc, SIZES[size], SUBSETS[subset])
        rows.append(_row(enc, size, subset, 0, 0.003, y))
        # the LR search's losers: far off the law (a fitter that used them would be pulled away)
        rows.append(_row(enc, size, subset, 0, 0.001, 0.5 * y, lr_selected=False, lr_at_edge=None))
    # a second seed on one cell, with its spread
    rows.append(
        _row(
            "text", "s1", "d1", 1, 0.003, _loss("text", 1e5, 1e6) + 1e-4, n_seeds=2, seed_std_valid_loss=1e-4
        )
    )
    for r in rows:  # the spread is on every row of the (size, subset, LR) cell, as `table.annotate` writes it
        if r["run_id"] == "text-s1-d1-0-0.003":
            r.update(n_seeds=2, seed_std_valid_loss=1e-4)
    # an LR winner at the grid's edge
    rows.append(_row("id", "s4", "d4", 1, 0.01, _loss("id", 3e6, 3e7), lr_at_edge=True))
    # a held-out run, far off the law: it must never be fitted
    rows.append(_row("text", "big", "d4", 0, 0.003, 50.0, holdout=True))
    upsert_results(tmp_path, rows)
    return tmp_path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = _table(tmp_path_factory.mktemp("v2"))
    return out, fit(out, n_boot=8)


def test_one_fit_per_encoder(fitted) -> None:
    _, fits = fitted
    assert fits["encoders"] == ["text", "id"]
    assert {"valid_loss:text", "valid_loss:id"} <= set(fits["metrics"])
    for enc, (_, alpha) in LAWS.items():
        m = fits["metrics"][f"valid_loss:{enc}"]
        assert m["encoder"] == enc and m["metric"] == "valid_loss"
        assert all(r.startswith(enc) for r in m["runs"]["run_id"])
        assert m["joint"]["coef"]["alpha_N"] == pytest.approx(alpha, abs=0.02)


def test_only_lr_winners_and_no_holdout_are_fitted(fitted) -> None:
    _, fits = fitted
    m = fits["metrics"]["valid_loss:text"]
    ids = m["runs"]["run_id"]
    assert not any(r.endswith("-0.001") for r in ids)  # LR-search losers
    assert not any("-big-" in r for r in ids)  # held out
    assert len(ids) == 16 + 1  # 4 sizes x 4 subsets, plus the second seed (a separate point)
    assert len(fits["lr_search"]) == 2 * 2 * 16 + 3
    assert fits["lr_at_edge"] == ["id/s4/d4/seed 1"]


def test_d_is_unique_targets(fitted) -> None:
    _, fits = fitted
    m = fits["metrics"]["valid_loss:id"]
    assert sorted(set(m["runs"]["d"])) == sorted(SUBSETS.values())
    assert "unique training targets" in fits["assumptions"][0]
    from scalerec.scaling.plots import d_label  # the figures' D axis says the same (was "targets seen")

    assert d_label(m) == "unique training targets D"
    assert d_label({k: v for k, v in m.items() if k != "encoder"}) == "targets seen D"  # a v1 block


def test_known_floor_fields(fitted) -> None:
    out, fits = fitted
    kf = fits["metrics"]["valid_loss:text"]["known_floor"]
    assert kf["bayes_floor"] == FLOOR
    assert kf["E_rel_error"] == pytest.approx((kf["E"] - FLOOR) / FLOOR)
    assert abs(kf["E_rel_error"]) < 0.02 and kf["E_within_bar"] is True
    # the evaluation users' own floor is reported beside the analytical one; the bar stays on the latter
    assert kf["eval_floor"] == EVAL_FLOOR
    assert kf["E_rel_error_eval"] == pytest.approx((kf["E"] - EVAL_FLOOR) / EVAL_FLOOR)
    lo, hi = fits["metrics"]["valid_loss:text"]["joint"]["ci95"]["alpha_N"]
    assert kf["alpha_N_ci95_half_width"] == pytest.approx((hi - lo) / 2)
    lines = summary_lines(fits)
    assert any(ln.startswith("valid_loss:text: fitted E = ") and "Bayes floor 2.0000" in ln for ln in lines)
    assert any("against the evaluation users' own floor 2.0040" in ln for ln in lines)
    assert any(ln.startswith("LR search: 1 cells") for ln in lines)
    page = report(out).read_text()
    assert "Known floor" in page and "<h2>LR search</h2>" in page and "id/s4/d4/seed 1" in page


def test_seed_noise_is_reported(fitted) -> None:
    _, fits = fitted
    sn = fits["metrics"]["valid_loss:text"]["seed_noise"]
    assert sn["n_runs_with_seed_std"] == 2 and sn["pooled_seed_std"] == pytest.approx(1e-4)
    assert (
        "seed_noise" not in fits["metrics"]["valid_loss:id"]
        or fits["metrics"]["valid_loss:id"]["seed_noise"]["n_runs_with_seed_std"] == 0
    )


def test_seed_precision_weighs_noisy_cells_less() -> None:
    y = np.array([2.0, 2.0, 2.0])
    w, info = cells.seed_precision(y, np.array([0.01, 0.02, math.nan]))
    assert w is not None and w[0] > w[2] > w[1]  # the single-seed run gets the pooled std
    assert w.mean() == pytest.approx(1.0)
    assert info["pooled_seed_std"] == pytest.approx(math.sqrt((0.01**2 + 0.02**2) / 2))
    assert cells.seed_precision(y, np.full(3, math.nan))[0] is None


def test_two_selected_rows_in_one_cell_are_refused() -> None:
    rows = [_row("text", "s1", "d1", 0, lr, 3.0) for lr in (0.001, 0.003)]
    with pytest.raises(ValueError, match="two lr_selected rows"):
        cells.fitted_rows(rows, "text")
