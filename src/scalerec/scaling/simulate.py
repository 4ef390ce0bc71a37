"""Check a sweep's plan on CPU before any GPU run: a parametric bootstrap of the planned grid.

Given the planned runs (N, D per run: model sizes × data sizes × seeds, e.g. from
`scalerec sweep SPEC --dry-run`), an assumed true law L = E + A/N^α + B/D^β and a noise level
(log-space standard deviation, best taken from seed-to-seed spread of earlier runs via
`seed_noise`), simulate the sweep's results `reps` times, fit each simulated table exactly as
`scalerec fit` would (every start refined, bootstrap from the full grid, profile test), and report
how well the plan identifies the exponents: the CI half-width of alpha_N and alpha_D, how often
each is flagged "not identified", whether the intervals cover the truth, and how far E lands from
the truth. Issue 18's bar for the method-validation world is E within 2% and an alpha_N CI
half-width ≤ 0.05; `summary["meets_bar"]` says whether the median replicate meets it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from scalerec.scaling import identify, laws

BAR_E_REL = 0.02
BAR_ALPHA_N_HALF_WIDTH = 0.05


def seed_noise(rows: list[dict[str, Any]], metric: str = "valid_loss") -> float | None:
    """Pooled within-cell standard deviation of log(metric) over (size, subset) cells run with
    more than one seed; None when no cell has two finished seeds."""
    cells: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        v = r.get(metric)
        if r.get("status") == "ok" and v is not None and np.isfinite(v) and v > 0:
            cells[(r.get("size"), r.get("subset"), r.get("lr"))].append(float(np.log(v)))
    groups = [np.asarray(v) for v in cells.values() if len(v) > 1]
    dof = sum(g.size - 1 for g in groups)
    if not dof:
        return None
    return float(np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof))


def simulate_table(n: np.ndarray, d: np.ndarray, law: dict[str, float], noise: float, rng) -> np.ndarray:
    """One simulated sweep: the true law at every planned run times exp(noise·ε), ε ~ N(0, 1)."""
    y = law["E"] + law["A_N"] * n ** -law["alpha_N"] + law["A_D"] * d ** -law["alpha_D"]
    return y * np.exp(rng.normal(0.0, noise, size=y.shape))


def _replicate(n: np.ndarray, d: np.ndarray, y: np.ndarray, law: dict[str, float], n_boot: int) -> dict:
    fit = laws.fit_joint(n, d, y)
    laws.bootstrap_law(fit, [n, d], y, n_boot=n_boot)
    ident = identify.identification(fit.to_dict(), identify.profiles([n, d], y, fit))
    out: dict[str, Any] = {"E": fit.E, "E_rel_error": abs(fit.E / law["E"] - 1.0)}
    for name in ("alpha_N", "alpha_D"):
        lo, hi = fit.ci.get(name, (np.nan, np.nan))
        out[name] = fit.coef[name]
        out[f"{name}_half_width"] = 0.5 * (hi - lo)
        out[f"{name}_covered"] = bool(lo <= law[name] <= hi)
        out[f"{name}_identified"] = ident[name]["identified"]
    return out


def simulate(
    n: np.ndarray,
    d: np.ndarray,
    law: dict[str, float],
    noise: float,
    reps: int = 20,
    n_boot: int = 50,
    seed: int = 0,
) -> dict[str, Any]:
    """Parametric bootstrap of a planned grid; n, d: [runs] (one entry per planned run, seeds
    repeated). Returns every replicate and a summary (medians over replicates)."""
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    if n.shape != d.shape or n.size < 5:
        raise ValueError(f"need >= 5 planned runs with one N and one D each, got {n.size}")
    rng = np.random.default_rng(seed)
    runs = [_replicate(n, d, simulate_table(n, d, law, noise, rng), law, n_boot) for _ in range(reps)]

    def col(key: str) -> np.ndarray:
        return np.asarray([r[key] for r in runs], dtype=float)

    summary: dict[str, Any] = {
        "runs_planned": int(n.size),
        "sizes": int(np.unique(n).size),
        "data_sizes": int(np.unique(d).size),
        "noise_log_sd": noise,
        "true_law": law,
        "reps": reps,
        "n_boot": n_boot,
        "E_rel_error_median": float(np.median(col("E_rel_error"))),
    }
    for name in ("alpha_N", "alpha_D"):
        summary[f"{name}_median"] = float(np.median(col(name)))
        summary[f"{name}_half_width_median"] = float(np.nanmedian(col(f"{name}_half_width")))
        summary[f"{name}_identified_fraction"] = float(col(f"{name}_identified").mean())
        summary[f"{name}_coverage"] = float(col(f"{name}_covered").mean())
    summary["meets_bar"] = bool(
        summary["E_rel_error_median"] <= BAR_E_REL
        and summary["alpha_N_half_width_median"] <= BAR_ALPHA_N_HALF_WIDTH
        and summary["alpha_N_identified_fraction"] >= 0.5
    )
    return {"summary": summary, "replicates": runs}
