"""Saturation size N_sat(D): the smallest model within seed noise of the best model at each D.

Issue 18 asks, of real data, for "the saturation size N_sat(D) (the smallest model within seed noise
of the best at each D)". A joint law that does not identify alpha_N cannot answer which sizes differ;
this comparison of measured means can, and says how large a difference the seeds can hide.

Definition (one encoder, one metric, one D point = one `subset` of the sweep, i.e. one number of
unique training targets *and* one training length; pooled_v2's last two points share D and differ in
epochs, so each is its own point):

* Runs: status ok, `lr_selected` (each seed's best LR by end-of-run validation loss,
  `scaling.table`), not held out, the metric finite.
* Per size i: m_i = mean over its seeds, n_i = number of seeds, s_i = sample std (ddof 1) of those
  values when n_i ≥ 2. A one-seed cell takes the pooled seed std of the encoder at that D
  (sqrt(Σ(n−1)·s² / Σ(n−1)) over that D's cells with ≥ 2 seeds; the pooled std over every D when
  no cell at that D has two seeds): seed noise grows with D (pooled_v2 ID loss: ~0.001 nats at 27K
  targets, ~0.03 at 862K), so a pool over every D would misstate it at both ends.
* Best size b: the best mean (lowest loss, highest NDCG).
* Noise of size i: `NOISE_SE` (2) standard errors of the difference of means,
  2·sqrt(s_i²/n_i + s_b²/n_b); size i is within noise when |m_i − m_b| ≤ that (the best is within
  by definition).
* N_sat: the smallest non-embedding N among sizes within noise of the best.

With 2–3 seeds these standard errors are themselves rough (1–2 degrees of freedom per cell), so a
size "within noise" means "not shown to be worse", not "shown to be as good".
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

NOISE_SE = 2.0
"""Standard errors of the difference of two sizes' means that count as seed noise (~95%, normal)."""
RULE = (
    "At each D point (subset) and per size: the mean over seeds of the LR-selected runs; N_sat = the "
    f"smallest size whose mean is within {NOISE_SE:g}·sqrt(s_i²/n_i + s_best²/n_best) of the best "
    "size's mean, s = the cell's seed std (ddof 1), or for a one-seed cell the encoder's pooled "
    "seed std at that D (over every D when that D has no 2-seed cell)."
)


def _pooled(cells: list[tuple[int, float]]) -> float | None:
    """Pooled std sqrt(Σ(n−1)s²/Σ(n−1)) of (n, std) cells with n ≥ 2; None when there are none."""
    dof = sum(n - 1 for n, _ in cells if n >= 2)
    if not dof:
        return None
    return math.sqrt(sum((n - 1) * s**2 for n, s in cells if n >= 2) / dof)


def _cell_stats(values: list[float]) -> tuple[int, float, float | None]:
    arr = np.asarray(values, dtype=float)
    return arr.size, float(arr.mean()), float(arr.std(ddof=1)) if arr.size >= 2 else None


def _cells(rows: list[dict[str, Any]], metric: str) -> dict[Any, dict[Any, list[dict[str, Any]]]]:
    """subset → size → the LR-selected, not held out, finite rows."""
    out: dict[Any, dict[Any, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(rows, key=lambda r: (str(r.get("subset")), str(r.get("size")), r.get("seed") or 0)):
        v = r.get(metric)
        usable = r.get("status") == "ok" and r.get("lr_selected") and not r.get("holdout")
        if usable and v is not None and math.isfinite(v):
            out[r.get("subset")][r.get("size")].append(r)
    return out


def _point(
    subset: Any, by_size: dict[Any, list[dict[str, Any]]], metric: str, higher: bool, pooled_all: float | None
) -> dict[str, Any]:
    """N_sat at one D point; `pooled_all` is the encoder's pooled std over every D (the fallback)."""
    sizes = []
    for size, runs in by_size.items():
        n, mean, std = _cell_stats([r[metric] for r in runs])
        sizes.append(
            {
                "size": size,
                "n": float(np.median([r["n_params_non_embedding"] for r in runs])),
                "n_seeds": n,
                "mean": mean,
                "std": std,
                "lrs": sorted({float(r["lr"]) for r in runs}),
            }
        )
    sizes.sort(key=lambda s: (s["n"], str(s["size"])))
    pooled_here = _pooled([(s["n_seeds"], s["std"]) for s in sizes if s["std"] is not None])
    pooled = pooled_here if pooled_here is not None else pooled_all
    runs = [r for rs in by_size.values() for r in rs]
    point: dict[str, Any] = {
        "subset": subset,
        "d": float(np.median([r["unique_targets"] for r in runs])),
        "epochs": float(np.median([r["epochs"] for r in runs]))
        if all(r.get("epochs") for r in runs)
        else None,
        "pooled_seed_std": pooled,
        "pooled_from": "this D" if pooled_here is not None else "every D",
        "sizes": sizes,
    }
    if pooled is None:
        return {**point, "skipped": "no cell of this encoder has >= 2 seeds, so seed noise is unknown"}
    best = (max if higher else min)(sizes, key=lambda s: s["mean"])
    for s in sizes:
        s["std_used"] = s["std"] if s["std"] is not None else pooled
    for s in sizes:
        se = math.sqrt(s["std_used"] ** 2 / s["n_seeds"] + best["std_used"] ** 2 / best["n_seeds"])
        s["gap"] = abs(s["mean"] - best["mean"])
        s["noise"] = 0.0 if s is best else NOISE_SE * se
        s["within_noise"] = s is best or s["gap"] <= s["noise"]
    sat = next(s for s in sizes if s["within_noise"])
    return {
        **point,
        "best_size": best["size"],
        "best_n": best["n"],
        "best_mean": best["mean"],
        "n_sat_size": sat["size"],
        "n_sat": sat["n"],
        "n_sat_is_smallest": sat is sizes[0],
        "best_is_largest": best is sizes[-1],
    }


def saturation(rows: list[dict[str, Any]], encoder: Any, metric: str, higher: bool) -> dict[str, Any]:
    """N_sat at every D point of one encoder's rows (`cells.fitted_rows`) for one metric."""
    by_subset = _cells(rows, metric)
    all_cells = [_cell_stats([r[metric] for r in runs]) for sz in by_subset.values() for runs in sz.values()]
    pooled_all = _pooled([(n, s) for n, _, s in all_cells if s is not None])
    points = [_point(sub, sizes, metric, higher, pooled_all) for sub, sizes in by_subset.items()]
    points.sort(key=lambda p: (p["d"], p["epochs"] or 0.0, str(p["subset"])))
    return {
        "encoder": encoder,
        "metric": metric,
        "higher_is_better": higher,
        "noise_se": NOISE_SE,
        "rule": RULE,
        "pooled_seed_std_all_d": pooled_all,
        "points": points,
    }


def _short(x: float) -> str:
    return f"{x / 1e6:.3g}M" if x >= 1e6 else f"{x / 1e3:.3g}K"


def summary_line(entry: dict[str, Any], flagged: set[Any]) -> str:
    """`scalerec fit`'s line for one (encoder, metric): N_sat (best) at each D; `flagged` sizes
    (incomplete LR search) carry a '*'."""

    def name(size: Any) -> str:
        return f"{size}*" if size in flagged else str(size)

    parts = []
    for p in entry["points"]:
        at = f"D={_short(p['d'])}" + (f" ({p['epochs']:.2g} ep)" if p.get("epochs") else "")
        if "skipped" in p:
            parts.append(f"{at}: skipped ({p['skipped']})")
            continue
        parts.append(
            f"{at}: N_sat {name(p['n_sat_size'])} ({_short(p['n_sat'])}), best {name(p['best_size'])}"
        )
    label = "/".join(str(x) for x in (entry["metric"], entry["encoder"]) if x is not None)
    star = " (* = LR search incomplete)" if flagged else ""
    return f"saturation {label}{star}: " + "; ".join(parts)
