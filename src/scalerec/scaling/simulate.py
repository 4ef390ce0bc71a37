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

`simulate_extrapolation` asks the same of item 4's bar: add the planned held-out runs (never fitted,
beyond the fitted range), simulate, and run `scalerec.scaling.extrapolate.extrapolation_test` on each
replicate, so a plan says how often the held-out values fall inside the prediction intervals and the law
beats both baselines before the GPU time is spent.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from scalerec.scaling import identify, laws
from scalerec.scaling.extrapolate import extrapolation_test

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


def simulate_extrapolation(
    n: np.ndarray,
    d: np.ndarray,
    law: dict[str, float],
    noise: float,
    holdout: list[tuple[float, float]],
    reps: int = 20,
    n_boot: int = 50,
    seed: int = 0,
) -> dict[str, Any]:
    """Item 4's test on a planned grid: the fitted runs (n, d) plus the held-out runs `holdout` [(N, D)],
    all simulated under `law` with log-space noise, then `extrapolation_test` with the held-out runs marked.
    Compute is taken as N·D (non-embedding). The sweep's own FLOPs also count the item encoder and the
    softmax, which do not grow with N, so its compute ratios are smaller (world_v6's m2: 4.9× m's trunk by
    N·D, 4.17× by FLOPs): check a plan's ≥ 4× on its dry run, not here.

    Summary: the fraction of replicates whose every held-out value lies inside its 95% prediction interval,
    the fraction where the joint law beats both baselines, both at once (the bar), and the median mean
    relative error of each predictor."""
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    hn = np.asarray([h[0] for h in holdout], dtype=float)
    hd = np.asarray([h[1] for h in holdout], dtype=float)
    if hn.size == 0:
        raise ValueError("need at least one held-out run (N, D)")
    all_n, all_d = np.concatenate([n, hn]), np.concatenate([d, hd])
    marked = np.r_[np.zeros(n.size, dtype=bool), np.ones(hn.size, dtype=bool)]
    rng = np.random.default_rng(seed)
    runs: list[dict[str, Any]] = []
    for i in range(reps):
        y = simulate_table(all_n, all_d, law, noise, rng)
        res = extrapolation_test(
            all_n, all_d, all_n * all_d, y, higher=False, marked=marked, n_boot=n_boot, seed=seed + i
        )
        if "skipped" in res or res["n_heldout"] != hn.size:
            raise ValueError(
                f"held-out runs {holdout} are not all beyond the fitted range (N >= 2x the largest fitted N"
                f" and N*D >= 4x the largest fitted N*D): {res.get('skipped', res['n_heldout'])}"
            )
        errors = {row["predictor"]: row["mean_rel_error"] for row in res["table"]}
        inside = res.get("fraction_inside")
        runs.append(
            {
                "all_inside": inside == 1.0,
                "law_beats_baselines": res["law_beats_baselines"],
                "mean_rel_error": errors,
            }
        )
    predictors = list(runs[0]["mean_rel_error"])
    inside = np.asarray([r["all_inside"] for r in runs])
    beats = np.asarray([r["law_beats_baselines"] for r in runs])
    summary: dict[str, Any] = {
        "test": "extrapolation",
        "runs_fitted": int(n.size),
        "heldout": [[float(a), float(b)] for a, b in zip(hn, hd, strict=True)],
        "noise_log_sd": noise,
        "reps": reps,
        "n_boot": n_boot,
        "inside_fraction": float(inside.mean()),
        "law_beats_baselines_fraction": float(beats.mean()),
        "bar_met_fraction": float((inside & beats).mean()),
        "mean_rel_error_median": {
            k: float(np.median([r["mean_rel_error"][k] for r in runs])) for k in predictors
        },
    }
    return {"summary": summary, "replicates": runs}
