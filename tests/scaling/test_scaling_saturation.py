"""N_sat(D) on hand-computed tables: means over seeds of the LR winners, 2 standard errors of the
difference as noise, the pooled seed std for a one-seed cell (this D's pool, else every D's)."""

from __future__ import annotations

import math

import pytest

from scalerec.scaling.saturation import saturation, summary_line

N = {"z": 1e3, "a": 1e4, "b": 1e5, "c": 1e6}


def _row(size: str, subset: str, seed: int, loss: float, d: float = 1e5, **extra) -> dict:
    return {
        "run_id": f"{size}-{subset}-{seed}-{extra.get('lr', 1e-3)}",
        "status": "ok",
        "encoder": "text",
        "size": size,
        "subset": subset,
        "seed": seed,
        "lr": 1e-3,
        "n_params_non_embedding": N[size],
        "unique_targets": d,
        "epochs": 1.0,
        "valid_loss": loss,
        "valid_ndcg@10": 1.0 - loss / 10,
        "lr_selected": True,
        "holdout": False,
        **extra,
    }


def _table() -> list[dict]:
    """D point d1: a 3.20/3.22, b 2.92/2.94, c 2.90/2.92 (every 2-seed std = 0.02/√2), z 2.94 (one
    seed). Plus rows that must be ignored: an LR loser and a held-out run, both far better."""
    rows = [
        _row("a", "d1", 0, 3.20),
        _row("a", "d1", 1, 3.22),
        _row("b", "d1", 0, 2.92),
        _row("b", "d1", 1, 2.94),
        _row("c", "d1", 0, 2.90),
        _row("c", "d1", 1, 2.92),
        _row("z", "d1", 0, 2.94),
        _row("c", "d1", 0, 1.00, lr=3e-3, lr_selected=False),
        _row("c", "d1", 0, 1.00, holdout=True),
    ]
    # D point d2 (larger D, noisier seeds): a 2.6/2.6 (std 0), c 2.0/2.0 + 0.2·√2 (std 0.2)
    c2 = 2.0 + 0.2 * math.sqrt(2)
    rows += [_row("a", "d2", 0, 2.6, d=1e6), _row("a", "d2", 1, 2.6, d=1e6)]
    rows += [_row("c", "d2", 0, 2.0, d=1e6), _row("c", "d2", 1, c2, d=1e6)]
    # D point d0: one seed per size, so its one-seed cells fall back to the pool over every D
    rows += [_row("a", "d0", 0, 4.0, d=1e4), _row("c", "d0", 0, 3.9, d=1e4)]
    return rows


def _point(entry: dict, subset: str) -> dict:
    return next(p for p in entry["points"] if p["subset"] == subset)


def test_hand_computed_loss_saturation() -> None:
    entry = saturation(_table(), "text", "valid_loss", higher=False)
    assert [p["subset"] for p in entry["points"]] == ["d0", "d1", "d2"]  # by D
    p = _point(entry, "d1")
    sizes = {s["size"]: s for s in p["sizes"]}
    assert [s["size"] for s in p["sizes"]] == ["z", "a", "b", "c"]  # by N
    s2 = 0.02 / math.sqrt(2)
    assert p["pooled_seed_std"] == pytest.approx(s2) and p["pooled_from"] == "this D"
    assert p["best_size"] == "c" and p["best_mean"] == pytest.approx(2.91)
    assert sizes["a"]["noise"] == pytest.approx(2 * math.sqrt(s2**2 / 2 + s2**2 / 2))
    assert sizes["a"]["within_noise"] is False  # gap 0.30
    assert sizes["b"]["gap"] == pytest.approx(0.02) and sizes["b"]["within_noise"] is True  # noise 0.0283
    # z has one seed: pooled std of this D, noise 2·sqrt(s²/1 + s²/2) = 0.0346 > gap 0.03
    assert sizes["z"]["std_used"] == pytest.approx(s2)
    assert sizes["z"]["noise"] == pytest.approx(2 * math.sqrt(s2**2 + s2**2 / 2))
    assert sizes["z"]["within_noise"] is True
    assert p["n_sat_size"] == "z" and p["n_sat"] == 1e3 and p["n_sat_is_smallest"] is True
    assert p["best_is_largest"] is True


def test_noisier_d_point_uses_its_own_pool_and_fallback_pools_every_d() -> None:
    entry = saturation(_table(), "text", "valid_loss", higher=False)
    d2 = _point(entry, "d2")
    sizes = {s["size"]: s for s in d2["sizes"]}
    # a: std 0 (two equal seeds), c: std 0.2; this D's pool sqrt((0 + 0.04) / 2)
    assert sizes["a"]["std"] == 0.0 and sizes["c"]["std"] == pytest.approx(0.2)
    assert d2["pooled_seed_std"] == pytest.approx(math.sqrt(0.02))
    assert sizes["a"]["noise"] == pytest.approx(2 * math.sqrt(0.0 / 2 + 0.04 / 2))  # 0.283
    assert sizes["a"]["gap"] == pytest.approx(2.6 - (2.0 + 0.1 * math.sqrt(2)))  # 0.459: outside
    assert d2["best_size"] == d2["n_sat_size"] == "c" and d2["n_sat_is_smallest"] is False
    # d0 has no 2-seed cell: the pool over every D, dof-weighted (d1: 3 cells of std 0.02/√2; d2: 0, 0.2)
    pooled_all = math.sqrt((3 * 0.02**2 / 2 + 0.0 + 0.2**2) / 5)
    assert entry["pooled_seed_std_all_d"] == pytest.approx(pooled_all)
    d0 = _point(entry, "d0")
    assert d0["pooled_from"] == "every D" and d0["pooled_seed_std"] == pytest.approx(pooled_all)
    a0 = next(s for s in d0["sizes"] if s["size"] == "a")
    assert a0["noise"] == pytest.approx(2 * math.sqrt(2) * pooled_all)  # 0.255 > gap 0.1
    assert d0["best_size"] == "c" and d0["n_sat_size"] == "a"


def test_higher_is_better_metric_mirrors_the_loss() -> None:
    entry = saturation(_table(), "text", "valid_ndcg@10", higher=True)
    p = _point(entry, "d1")
    assert p["best_size"] == "c" and p["best_mean"] == pytest.approx(1 - 0.291)
    assert p["n_sat_size"] == "z"
    assert {s["size"]: s["within_noise"] for s in p["sizes"]} == {"z": True, "a": False, "b": True, "c": True}


def test_no_seed_spread_anywhere_is_said_not_guessed() -> None:
    rows = [_row("a", "d1", 0, 3.0), _row("c", "d1", 0, 2.9)]
    entry = saturation(rows, "text", "valid_loss", higher=False)
    assert "seed noise is unknown" in entry["points"][0]["skipped"]
    assert "skipped" in summary_line(entry, set())


def test_summary_line_stars_incomplete_sizes() -> None:
    entry = saturation(_table(), "text", "valid_loss", higher=False)
    line = summary_line(entry, {"z"})
    assert line.startswith("saturation valid_loss/text (* = LR search incomplete): D=10K")
    assert "N_sat z* (1K), best c" in line
