"""What the fits take from a v2 results table (`scaling.table` is the contract): which rows are
fitted, per encoder, with which D, and how seed spread weights them; plus the design tables the
report shows beside the fits (the LR search) and the known-floor check of a world sweep.

A v1 table (no `lr_selected` column) never reaches this module: `scaling.fits` keeps its own
best-LR choice for it, so the committed v1 fits stay byte-identical.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

E_BAR = 0.02
"""Issue 18's bar on a known-floor world: fitted E within 2% of the computed Bayes floor."""
ALPHA_HALF_WIDTH_BAR = 0.05
"""Issue 18's bar: 95% CI half-width of alpha_N at most 0.05."""
SIGMA_CLIP = 3.0
"""A cell's seed std is clipped to [pooled/3, 3·pooled] so one lucky pair of seeds cannot take
(or lose) the whole fit."""

ASSUMPTIONS_V2 = [
    "N = non-embedding parameters (blocks, adapter, positions, final norm); D = unique training targets "
    "(`unique_targets`; repeated epochs are not new data); C = analytic training FLOPs from final.json.",
    "Fitted rows: status ok, `lr_selected` (the best LR of its (encoder, size, subset, seed) cell), "
    "not `holdout`; each encoder is fitted on its own; seeds are separate points.",
    "Validation loss is weighted by seed noise: each run's Huber term gets weight 1/s_j^2 with "
    "s_j = seed std of its cell / its loss (log-space noise), the pooled seed std where the cell has one "
    "seed, clipped to [1/3, 3]x the pooled value, weights scaled to mean 1; the bootstrap and the "
    "profile use the same weights. Other metrics have no seed spread column and are unweighted.",
    "Compute-optimal allocation assumes C = k·N^gamma·D with k, gamma fitted on the runs.",
    "Higher-is-better metrics are fitted as error = 1 - metric with err = E + A/N^alpha + B/D^beta.",
    "Univariate laws are fitted on envelopes (best run per N, per D, and the compute frontier).",
]


def is_v2(rows: list[dict[str, Any]]) -> bool:
    """A table written by the v2 sweep (it marks the LR winners)."""
    return any(r.get("lr_selected") is not None for r in rows)


def encoders(rows: list[dict[str, Any]]) -> list[Any]:
    """Encoders of the table in first-seen order (None for a table without the column)."""
    out: list[Any] = []
    for r in rows:
        if r.get("encoder") not in out:
            out.append(r.get("encoder"))
    return out


def metric_key(metric: str, encoder: Any, n_encoders: int) -> str:
    """fits.json key of one (metric, encoder): the bare metric when the table has one encoder."""
    return metric if n_encoders <= 1 else f"{metric}:{encoder}"


def fitted_rows(rows: list[dict[str, Any]], encoder: Any) -> list[dict[str, Any]]:
    """One encoder's LR winners (holdout rows included: `scaling.fits` keeps them for the
    extrapolation test only). The table's annotation already chose one LR per cell, so a cell
    that has two selected rows means the table is broken."""
    sel = [
        r for r in rows if r.get("encoder") == encoder and r.get("lr_selected") and r.get("status") == "ok"
    ]
    seen: set[tuple] = set()
    for r in sel:
        key = (r.get("encoder"), r.get("size"), r.get("subset"), r.get("seed"), bool(r.get("holdout")))
        if key in seen:
            raise ValueError(f"two lr_selected rows for cell {key}: re-annotate results.parquet")
        seen.add(key)
    return sel


def seed_precision(y: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Per-run weights from seed spread (see ASSUMPTIONS_V2), and how they were built.

    y: [n] fitted loss; sigma: [n] seed std of each run's cell (NaN with one seed)."""
    have = np.isfinite(sigma) & (sigma > 0)
    info: dict[str, Any] = {"n_runs_with_seed_std": int(have.sum()), "n_runs": int(y.size)}
    if not have.any():
        return None, {**info, "weights": "none: no cell has >= 2 seeds, every run weighs 1"}
    pooled = float(np.sqrt(np.mean(sigma[have] ** 2)))
    s = np.where(have, np.clip(sigma, pooled / SIGMA_CLIP, pooled * SIGMA_CLIP), pooled) / y
    w = 1.0 / s**2
    w = w / w.mean()
    return w, {
        **info,
        "pooled_seed_std": pooled,
        "weights": "1/(seed std / loss)^2, scaled to mean 1",
        "weight_min": float(w.min()),
        "weight_max": float(w.max()),
    }


def lr_search(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ok row of the LR search, sorted by cell then LR (the report's LR-search table)."""
    cols = ["encoder", "size", "subset", "seed", "holdout", "lr", "valid_loss", "lr_selected", "lr_at_edge"]
    ok = [r for r in rows if r.get("status") == "ok"]

    def key(r: dict[str, Any]) -> tuple:
        return (str(r.get("encoder")), str(r.get("size")), str(r.get("subset")), r.get("seed") or 0, r["lr"])

    return [{c: r.get(c) for c in cols} for r in sorted(ok, key=key)]


def lr_edge_cells(table: list[dict[str, Any]]) -> list[str]:
    """'encoder/size/subset/seed' of every cell whose LR winner sits at the edge of its grid."""
    return [
        "/".join(str(r[k]) for k in ("encoder", "size", "subset") if r[k] is not None) + f"/seed {r['seed']}"
        for r in table
        if r.get("lr_selected") and r.get("lr_at_edge")
    ]


def known_floor(joint: dict[str, Any], floor: float, eval_floor: float | None = None) -> dict[str, Any]:
    """Fitted E against the world's Bayes floor and the alpha_N CI width, against issue 18's bars. The
    bar is read against the analytical floor (the issue's "computed floor"); `eval_floor`, the same
    predictor's loss on the sweep's own evaluation users, is reported beside it, since that finite
    sample's offset is common to every run and so part of any E gap that is not the fit's fault."""
    out: dict[str, Any] = {"bayes_floor": floor, "e_bar": E_BAR, "alpha_half_width_bar": ALPHA_HALF_WIDTH_BAR}
    if eval_floor is not None:
        out["eval_floor"] = eval_floor
    if "coef" not in joint:
        return {**out, "skipped": "no joint law"}
    e = float(joint["coef"]["E"])
    rel = (e - floor) / floor
    ci = joint.get("ci95", {}).get("alpha_N")
    half = (ci[1] - ci[0]) / 2 if ci and all(math.isfinite(v) for v in ci) else math.nan
    if eval_floor is not None:
        out["E_rel_error_eval"] = (e - eval_floor) / eval_floor
    return {
        **out,
        "E": e,
        "E_rel_error": rel,
        "E_within_bar": bool(abs(rel) <= E_BAR),
        "alpha_N": float(joint["coef"]["alpha_N"]),
        "alpha_N_ci95_half_width": half,
        "alpha_N_within_bar": bool(math.isfinite(half) and half <= ALPHA_HALF_WIDTH_BAR),
    }


def floor_line(metric: str, kf: dict[str, Any]) -> str:
    """One sentence on the known-floor check (`scalerec fit` output and the report)."""
    if "skipped" in kf:
        return f"{metric}: known floor {kf['bayes_floor']:.4f}, no joint law to compare"
    return (
        f"{metric}: fitted E = {kf['E']:.4f} vs Bayes floor {kf['bayes_floor']:.4f} "
        f"(rel. error {100 * kf['E_rel_error']:+.1f}%, bar ±{100 * kf['e_bar']:.0f}%: "
        f"{'met' if kf['E_within_bar'] else 'NOT met'}"
        + (
            f"; {100 * kf['E_rel_error_eval']:+.1f}% against the evaluation users' own floor "
            f"{kf['eval_floor']:.4f}"
            if "E_rel_error_eval" in kf
            else ""
        )
        + f"); alpha_N 95% CI half-width "
        f"{kf['alpha_N_ci95_half_width']:.3f} (bar ≤ {kf['alpha_half_width_bar']}: "
        f"{'met' if kf['alpha_N_within_bar'] else 'NOT met'})"
    )
