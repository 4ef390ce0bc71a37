"""The scaling paper's own law over data: sampled-10K NDCG@5 = a·D^b, fitted the way it read it.

The paper (see shared/PAPER.md) ranks each test target among 10,000 uniformly drawn items (drawn once
per 128 users) and reports, over data size, NDCG@5 ≈ 0.027·D^0.094 from the best model at each D.
Our sweeps score that protocol on test beside full ranking (`eval.paper_sampled`, column
`PAPER_COLUMN`), so our D exponent can sit beside theirs. Differences that remain: our D is unique
training targets (theirs: interactions of the subset), and our envelope is chosen on validation.
Each envelope point records its optimizer steps and epochs: in a warmup-stable-decay sweep the D
points are cooldown branches of one trunk, so a smaller D is also a shorter run, and b then mixes
data with training length (the paper trained every subset for many epochs).

Envelope (one encoder): LR-selected runs (`scaling.table`), not held out. Per (size, subset) cell,
the mean over seeds of `SELECT_ON` and of the paper metric. D points whose unique targets agree within
`D_REL_TOL` are one D (pooled_v2 trains its full data for 2 and for 4 epochs: two training lengths of
the same D), and at each D the cell with the best mean `SELECT_ON` is the envelope point — chosen on
validation, never on test. Fit: least squares of log NDCG@5 on log D.

Two 95% intervals on b, because an envelope has few points (pooled_v2: 4 D values):
* `ci95` (bootstrap): resample seeds with replacement inside every cell (validation and test of a
  run stay paired), recompute the means, re-choose the envelope on validation, refit. It carries
  seed noise and selection noise, not lack of fit.
* `ci95_ols`: the t-interval of the slope from the fit's residuals (n − 2 degrees of freedom); it
  carries lack of fit. None with fewer than 3 points.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from scalerec.scaling.laws import percentile_ci

PAPER_COLUMN = "test_paper_sampled10000/ndcg@5"
"""Results-table column of the paper's metric (absent from older tables: then nothing is fitted)."""
SELECT_ON = "valid_ndcg@10"
"""Validation metric (higher is better) that picks the envelope's size at each D; every table has it."""
D_REL_TOL = 0.01
"""D points within 1% of each other are one D (unique targets differ by a few between runs)."""
PAPER: dict[str, Any] = {
    "a": 0.027, "b": 0.094, "source": "shared/PAPER.md: NDCG@5 ≈ 0.027·D^0.094 (sampled 10K, test)"
}
BOOT_SEED = 0


def has_column(rows: list[dict[str, Any]]) -> bool:
    """True when some ok row carries the paper metric."""
    return any(r.get(PAPER_COLUMN) is not None and r.get("status") == "ok" for r in rows)


def _usable(r: dict[str, Any]) -> bool:
    vals = [r.get(PAPER_COLUMN), r.get(SELECT_ON), r.get("unique_targets")]
    ok = r.get("status") == "ok" and r.get("lr_selected") and not r.get("holdout")
    return bool(ok) and all(v is not None and math.isfinite(v) and v > 0 for v in vals)


def _cells(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (size, subset): seeds' paired (validation, paper metric) arrays and D, sorted by D."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if _usable(r):
            groups[(str(r.get("size")), str(r.get("subset")))].append(r)
    cells = []
    for (size, subset), runs in sorted(groups.items()):
        runs.sort(key=lambda r: r.get("seed") or 0)
        cells.append(
            {
                "size": size,
                "subset": subset,
                "d": float(np.median([r["unique_targets"] for r in runs])),
                "steps": _median(runs, "steps"),
                "epochs": _median(runs, "epochs"),
                "seeds": [r.get("seed") for r in runs],
                "valid": np.asarray([r[SELECT_ON] for r in runs], dtype=float),
                "paper": np.asarray([r[PAPER_COLUMN] for r in runs], dtype=float),
            }
        )
    return sorted(cells, key=lambda c: (c["d"], c["subset"], c["size"]))


def _median(runs: list[dict[str, Any]], column: str) -> float | None:
    vals = [r.get(column) for r in runs]
    if any(v is None for v in vals):
        return None
    return float(np.median(np.asarray(vals, dtype=float)))


def _d_groups(cells: list[dict[str, Any]]) -> list[list[int]]:
    """Indices of `cells` (sorted by D) grouped into D values within `D_REL_TOL` of the group's first."""
    groups: list[list[int]] = []
    for i, c in enumerate(cells):
        if groups and c["d"] <= cells[groups[-1][0]]["d"] * (1 + D_REL_TOL):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _envelope(valid: list[float], groups: list[list[int]]) -> list[int]:
    """Per D group, the cell with the best validation mean (ties: the first, i.e. smallest D/name)."""
    return [max(g, key=lambda i: (valid[i], -i)) for g in groups]


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) of log y = log a + b·log x."""
    b, la = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(la)), float(b)


def _ols_ci(x: np.ndarray, y: np.ndarray, b: float, a: float) -> tuple[list[float] | None, float]:
    """t-interval of the slope from residuals, and R² in log space."""
    from scipy import stats

    lx, ly = np.log(x), np.log(y)
    resid = ly - (math.log(a) + b * lx)
    sst = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / sst if sst > 0 else float("nan")
    if x.size < 3:
        return None, r2
    se = math.sqrt(float(np.sum(resid**2)) / (x.size - 2) / float(np.sum((lx - lx.mean()) ** 2)))
    t = float(stats.t.ppf(0.975, x.size - 2))
    return [b - t * se, b + t * se], r2


def _bootstrap(cells: list[dict[str, Any]], groups: list[list[int]], n_boot: int) -> np.ndarray:
    """[n_boot', 2] (a, b) refits with seeds resampled inside each cell (see module docstring)."""
    rng = np.random.default_rng(BOOT_SEED)
    x = np.asarray([c["d"] for c in cells])
    out = []
    for _ in range(n_boot):
        idx = [rng.integers(0, c["valid"].size, c["valid"].size) for c in cells]
        valid = [float(c["valid"][i].mean()) for c, i in zip(cells, idx, strict=True)]
        paper = np.asarray([c["paper"][i].mean() for c, i in zip(cells, idx, strict=True)])
        env = _envelope(valid, groups)
        out.append(_ols(x[env], paper[env]))
    return np.asarray(out).reshape(-1, 2)


def fit_paper_law(rows: list[dict[str, Any]], encoder: Any, n_boot: int = 100) -> dict[str, Any]:
    """The paper-form law of one encoder's rows (`cells.fitted_rows`), with the paper's fit beside."""
    cells = _cells(rows)
    groups = _d_groups(cells)
    out: dict[str, Any] = {
        "encoder": encoder,
        "metric": PAPER_COLUMN,
        "selected_on": SELECT_ON,
        "form": "NDCG@5 = a·D^b (D = unique training targets)",
        "paper": PAPER,
        "n_points": len(groups),
    }
    if len(groups) < 2:
        return {**out, "skipped": f"{len(groups)} D values with the paper metric; need >= 2"}
    env = _envelope([float(c["valid"].mean()) for c in cells], groups)
    x = np.asarray([cells[i]["d"] for i in env])
    y = np.asarray([float(cells[i]["paper"].mean()) for i in env])
    a, b = _ols(x, y)
    ci_ols, r2 = _ols_ci(x, y, b, a)
    boots = _bootstrap(cells, groups, n_boot) if n_boot else np.empty((0, 2))
    out.update(a=a, b=b, r2_log=r2, ci95_ols={"b": ci_ols} if ci_ols else {}, n_boot=n_boot)
    out["ci95"] = {"a": percentile_ci(boots[:, 0]), "b": percentile_ci(boots[:, 1])} if len(boots) else {}
    out["points"] = [
        {
            "d": cells[i]["d"],
            "subset": cells[i]["subset"],
            "size": cells[i]["size"],
            "n_seeds": int(cells[i]["valid"].size),
            "steps": cells[i]["steps"],
            "epochs": cells[i]["epochs"],
            SELECT_ON: float(cells[i]["valid"].mean()),
            PAPER_COLUMN: float(cells[i]["paper"].mean()),
            "candidates": len(groups[k]),
        }
        for k, i in enumerate(env)
    ]
    return out


def summary_line(entry: dict[str, Any]) -> str:
    """`scalerec fit`'s line for one encoder's paper-form law."""
    label = f"paper metric ({PAPER_COLUMN}, {entry['encoder']})"
    if "skipped" in entry:
        return f"{label}: skipped: {entry['skipped']}"
    ci = entry["ci95"].get("b")
    ci_ols = entry["ci95_ols"].get("b")
    boot = f" [{ci[0]:.3f}, {ci[1]:.3f}] (95% seed bootstrap)" if ci else ""
    ols = f", [{ci_ols[0]:.3f}, {ci_ols[1]:.3f}] (95% OLS t-interval)" if ci_ols else ""
    return (
        f"{label}: NDCG@5 = {entry['a']:.3g}·D^{entry['b']:.3f}{boot}{ols}, {entry['n_points']} D points, "
        f"R² {entry['r2_log']:.3f}; paper: {PAPER['a']}·D^{PAPER['b']}"
    )
