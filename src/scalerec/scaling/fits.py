"""`scalerec fit DIR`: every law of the study fitted from `results.parquet`, written to `fits.json`.

For each fitted metric (validation full-softmax CE loss, lower is better; validation NDCG@10,
higher is better, fitted through its error 1 − NDCG as explained in `scaling.laws`):

* univariate laws on envelopes, the way the paper read its plots: metric vs N uses, for each
  model size, its best run over data sizes; metric vs D the best run over model sizes at each data
  size; metric vs C the compute-efficient frontier. Their CIs resample the envelope points.
* the joint law L(N, D) on every run, bootstrap CIs over runs, and from it the compute-optimal
  exponents N*(C) ∝ C^a, D*(C) ∝ C^b (with CIs: the same bootstrap refits) under the FLOPs
  relation C = k·N^γ·D fitted on the runs (`scaling.optimal`).
* identification: each exponent is flagged "not identified" when its bootstrap interval reaches
  a bound or its profile likelihood is flat (`scaling.identify`); a compute-optimal allocation
  built on a flagged exponent is omitted, with the reason, instead of printed.
* the true extrapolation test (`scaling.extrapolate`): runs never fitted, beyond the fitted N and
  compute, predicted by the joint law and by two baselines; and the older interpolation check
  (largest-compute runs held out, inside the fitted range).

Everything is deterministic (fixed bootstrap seeds, every start refined, no timestamps), so two
fits of the same table write byte-identical fits.json.

A v1 table (no `lr_selected` column): when the sweep searched LRs, each (size, subset, seed) cell
keeps its run with the best validation loss (or the best value of the fitted metric when there is
no loss column), and D = targets_seen. A v2 table (`scaling.table`'s contract, read by
`scaling.cells`): only `lr_selected` rows, one fit per encoder, D = unique_targets, validation loss
weighted by seed spread, the LR search and the known-floor check (world sweeps) written beside, and
`scaling.beside_laws`: LR-search coverage, the saturation size N_sat(D), the paper's NDCG@5 law.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.errors import UserError
from scalerec.io import write_json
from scalerec.scaling import beside_laws, cells, extrapolate, identify, laws, optimal
from scalerec.scaling.sweep import RESULTS, read_results

FITS_FORMAT = 2
"""fits.json layout version (2: identification, the extrapolation test, no timestamp)."""
HOLDOUT_COLUMN = "holdout"
"""Results-table column (bool) the sweep sets on runs that must never be fitted (spec `holdout_sizes`)."""
METRICS: dict[str, bool] = {"valid_loss": False, "valid_ndcg@10": True}
"""Metric column → higher is better."""
ASSUMPTIONS = [
    "N = non-embedding parameters (blocks, adapter, positions, final norm); D = training targets seen; "
    "C = analytic training FLOPs (forward + backward) from final.json.",
    "Compute-optimal allocation assumes C = k·N^gamma·D with k, gamma fitted on the runs.",
    "Higher-is-better metrics are fitted as error = 1 - metric with err = E + A/N^alpha + B/D^beta.",
    "Univariate laws are fitted on envelopes (best run per N, per D, and the compute frontier).",
]


@dataclass
class Points:
    """The runs one metric is fitted on (after dropping failed runs and choosing the best LR)."""

    run_id: np.ndarray
    size: np.ndarray
    subset: np.ndarray
    n: np.ndarray
    d: np.ndarray
    c: np.ndarray
    y: np.ndarray
    heldout: np.ndarray
    """True for runs the sweep marked `holdout` (extrapolation targets, never fitted)."""
    sigma: np.ndarray
    """Seed std of each run's cell (`seed_std_valid_loss`; NaN with one seed or a v1 table)."""


def _ok(row: dict[str, Any], metric: str, d_column: str = "targets_seen") -> bool:
    vals = [row.get(k) for k in ("n_params_non_embedding", d_column, "flops", metric)]
    return row.get("status") == "ok" and all(v is not None and np.isfinite(v) and v > 0 for v in vals)


def _best_lr(rows: list[dict[str, Any]], metric: str, higher: bool) -> list[dict[str, Any]]:
    """v1 tables: one run per (size, subset, seed) cell, the best LR by validation loss."""
    best: dict[tuple, tuple[float, dict[str, Any]]] = {}
    for r in rows:
        key = (r.get("size"), r.get("subset"), r.get("seed"))
        if "valid_loss" in r and r["valid_loss"] is not None:
            score = r["valid_loss"]
        else:
            score = -r[metric] if higher else r[metric]
        if key not in best or score < best[key][0]:
            best[key] = (score, r)
    return [r for _, r in best.values()]


def load_points(rows: list[dict[str, Any]], metric: str, higher: bool, v2: bool = False) -> Points:
    """Usable runs for `metric`. v1: one per (size, subset, seed) cell (best LR by validation loss),
    D = targets_seen. v2 (`rows` already one encoder's `cells.fitted_rows`): every row, D = unique_targets."""
    d_column = "unique_targets" if v2 else "targets_seen"
    usable = [r for r in rows if _ok(r, metric, d_column)]
    sel = usable if v2 else _best_lr(usable, metric, higher)

    def col(name: str, dtype: Any = float) -> np.ndarray:
        return np.asarray([r.get(name) for r in sel], dtype=dtype)

    return Points(
        col("run_id", object),
        col("size", object),
        col("subset", object),
        col("n_params_non_embedding"),
        col(d_column),
        col("flops"),
        col(metric),
        np.asarray([bool(r.get(HOLDOUT_COLUMN) or False) for r in sel], dtype=bool),
        np.asarray(
            [r.get("seed_std_valid_loss") if metric == "valid_loss" else None for r in sel], dtype=float
        ),
    )


def _univariate(x: np.ndarray, target: np.ndarray, idx: np.ndarray, name: str, n_boot: int) -> dict:
    if idx.size < 4:
        return {"skipped": f"{idx.size} envelope points; need >= 4 for E + A·{name}^-alpha"}
    fit = laws.fit_law([x[idx]], target[idx], (name,))
    samples = laws.bootstrap_law(fit, [x[idx]], target[idx], n_boot=n_boot)
    grid = np.geomspace(x[idx].min() / 2, x[idx].max() * 10, 60)
    out = {**fit.to_dict(), "points": idx.tolist(), "band": _band(samples, name, grid)}
    out["identification"] = identify.identification(out, identify.profiles([x[idx]], target[idx], fit))
    out["unidentified"] = identify.unidentified(out["identification"])
    return out


def _band(samples: dict[str, np.ndarray], name: str, grid: np.ndarray) -> dict[str, list[float]]:
    """Pointwise 95% band of a univariate law from its bootstrap refits (rows aligned by refit)."""
    if samples["E"].size == 0:
        return {}
    preds = (
        samples["E"][:, None]
        + samples[f"A_{name}"][:, None] * grid[None, :] ** -samples[f"alpha_{name}"][:, None]
    )
    preds = preds[np.isfinite(preds).all(axis=1)]
    if preds.shape[0] == 0:
        return {}
    lo, hi = np.nanpercentile(preds, [2.5, 97.5], axis=0)
    return {"x": grid.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}


def _plain(x: np.ndarray, y: np.ndarray, idx: np.ndarray, name: str, n_boot: int) -> dict:
    try:
        return {**laws.fit_plain_power(x[idx], y[idx], name, n_boot=n_boot).to_dict(), "points": idx.tolist()}
    except ValueError as exc:
        return {"skipped": str(exc)}


def _joint(
    p: Points,
    target: np.ndarray,
    rel: optimal.FlopsRelation,
    n_boot: int,
    precision: np.ndarray | None = None,
) -> tuple[dict, Any]:
    try:
        fit = laws.fit_joint(p.n, p.d, target, precision=precision)
    except ValueError as exc:
        return {"skipped": str(exc)}, None
    derived = {
        "a_opt": lambda f: optimal.optimal_exponents(f, rel)[0],
        "b_opt": lambda f: optimal.optimal_exponents(f, rel)[1],
    }
    laws.bootstrap_law(fit, [p.n, p.d], target, n_boot=n_boot, derived=derived, precision=precision)
    out = fit.to_dict()
    profiles = identify.profiles([p.n, p.d], target, fit, precision=precision)
    out["identification"] = identify.identification(out, profiles)
    out["unidentified"] = identify.unidentified(out["identification"])
    return out, fit


def unidentified_exponents(entry: dict[str, Any]) -> list[str]:
    """Exponents the data do not determine by the bootstrap test alone (estimate or 95% CI on a
    bound of [0, `laws.MAX_EXPONENT`]); `scaling.identify` adds the profile test. Such a number
    is an artefact of the optimiser, not a measurement, and the CLI and report say so."""
    return identify.unidentified(identify.identification(entry))


def _compute_optimal(
    fit: laws.LawFit, rel: optimal.FlopsRelation, p: Points, higher: bool, flagged: list[str]
) -> dict:
    if flagged:
        return {
            "omitted": f"{' and '.join(flagged)} not identified by these runs, so N*(C), D*(C) and "
            "the predicted metric there would be artefacts of the fitter",
            "flops_relation": rel.to_dict(),
        }
    a, b = optimal.optimal_exponents(fit, rel)
    budgets = float(p.c.max()) * np.array([0.01, 0.1, 1.0, 10.0, 100.0])
    alloc = optimal.optimal_allocation(fit, rel, budgets)
    pred = 1.0 - alloc["metric"] if higher else alloc["metric"]
    valid = np.isfinite(pred) & (pred > 0) & ((pred <= 1) if higher else True)
    if not valid.all():
        return {
            "omitted": "the law predicts impossible values of the metric at these budgets "
            f"({', '.join(f'{v:.3g}' for v in pred[~valid])})",
            "flops_relation": rel.to_dict(),
        }
    return {
        "a": a,
        "b": b,
        "ci95": {k: fit.ci[f"{k}_opt"] for k in ("a", "b") if f"{k}_opt" in fit.ci},
        "flops_relation": rel.to_dict(),
        "form": "N*(C) ∝ C^a, D*(C) ∝ C^b",
        "table": [
            {"flops": float(c), "n_opt": float(n), "d_opt": float(d), "predicted": float(m)}
            for c, n, d, m in zip(budgets, alloc["n"], alloc["d"], pred, strict=True)
        ],
    }


def _select(p: Points, keep: np.ndarray) -> Points:
    return Points(*(getattr(p, f)[keep] for f in Points.__dataclass_fields__))


def _checks(p: Points, higher: bool, n_boot: int, holdout_frac: float) -> dict[str, Any]:
    """The true extrapolation test on every run, and the interpolation check on the fitted runs;
    held-out indices are mapped to run ids so each number can be traced."""
    fitted = np.flatnonzero(~p.heldout)
    out = {
        "extrapolation": extrapolate.extrapolation_test(p.n, p.d, p.c, p.y, higher, p.heldout, n_boot),
        "interpolation_check": optimal.extrapolation_check(
            p.n[fitted], p.d[fitted], p.c[fitted], p.y[fitted], higher, holdout_frac=holdout_frac
        ),
    }
    for key, ex in out.items():
        if "heldout_index" in ex:
            idx = ex["heldout_index"] if key == "extrapolation" else fitted[ex["heldout_index"]].tolist()
            ex["heldout_index"] = idx
            ex["heldout_run_ids"] = [str(p.run_id[i]) for i in idx]
    return out


def fit_metric(
    p: Points, higher: bool, n_boot: int = 100, holdout_frac: float = 0.2, seed_weights: bool = False
) -> dict[str, Any]:
    """All fits of one metric; `p` from `load_points`. Runs marked held out are used only by the
    extrapolation test; every law is fitted on the others. `seed_weights`: weight the joint law
    (fit, bootstrap, profile) by seed spread (`cells.seed_precision`; v2 tables)."""
    checks = _checks(p, higher, n_boot, holdout_frac) if p.y.size >= 2 else {}
    p = _select(p, ~p.heldout)
    target = 1.0 - p.y if higher else p.y
    out: dict[str, Any] = {
        "higher_is_better": higher,
        "n_points": int(p.y.size),
        "fitted_quantity": "1 - metric" if higher else "metric",
    }
    if p.y.size < 2:
        return {**out, "skipped": f"only {p.y.size} usable runs"}
    envelopes = {
        "N": (p.n, optimal.best_per_group(p.n, target)),
        "D": (p.d, optimal.best_per_group(p.subset, target)),
        "C": (p.c, optimal.frontier(p.c, target)),
    }
    out["univariate"] = {k: _univariate(x, target, idx, k, n_boot) for k, (x, idx) in envelopes.items()}
    if higher:
        out["plain_power"] = {k: _plain(x, p.y, idx, k, n_boot) for k, (x, idx) in envelopes.items()}
    rel = optimal.fit_flops_relation(p.n, p.d, p.c)
    precision = None
    if seed_weights:
        precision, out["seed_noise"] = cells.seed_precision(p.y, p.sigma)
    out["joint"], fit = _joint(p, target, rel, n_boot, precision)
    if fit is not None:
        pred = fit.predict(p.n, p.d)
        out["joint"]["residuals_log"] = (np.log(target) - np.log(pred)).tolist()
        out["compute_optimal"] = _compute_optimal(fit, rel, p, higher, out["joint"]["unidentified"])
    out.update(checks)
    out["runs"] = {
        "run_id": p.run_id.tolist(),
        "size": p.size.tolist(),
        "subset": p.subset.tolist(),
        "n": p.n.tolist(),
        "d": p.d.tolist(),
        "c": p.c.tolist(),
        "y": p.y.tolist(),
    }
    return out


def fit(
    out_dir: str | Path, n_boot: int = 100, holdout_frac: float = 0.2, metrics: dict[str, bool] | None = None
) -> dict[str, Any]:
    """Fit every law on `<out_dir>/results.parquet` and write `<out_dir>/fits.json`; return it."""
    out_dir = Path(out_dir)
    rows = read_results(out_dir)
    if not rows:
        raise UserError(
            f"{out_dir / RESULTS} not found or empty: run `scalerec sweep SPEC --out {out_dir}` first"
        )
    result: dict[str, Any] = {
        "format_version": FITS_FORMAT,
        "source": RESULTS,
        "source_sha256": hashlib.sha256((out_dir / RESULTS).read_bytes()).hexdigest(),
        "n_runs": len(rows),
        "n_runs_ok": sum(r.get("status") == "ok" for r in rows),
        "n_boot": n_boot,
        "assumptions": ASSUMPTIONS,
        "metrics": {},
    }
    if cells.is_v2(rows):
        _fit_v2(rows, result, n_boot, holdout_frac, metrics or METRICS)
    else:
        for metric, higher in (metrics or METRICS).items():
            if not any(metric in r for r in rows):
                continue
            points = load_points(rows, metric, higher)
            result["metrics"][metric] = fit_metric(points, higher, n_boot, holdout_frac)
    write_json(out_dir / "fits.json", result)
    return result


def _common_value(rows: list[dict[str, Any]], key: str) -> float | None:
    """`key`'s value if every row that has it agrees (one world), else None."""
    values = {float(r[key]) for r in rows if r.get(key) is not None}
    return values.pop() if len(values) == 1 else None


def _fit_v2(
    rows: list[dict[str, Any]],
    result: dict[str, Any],
    n_boot: int,
    holdout_frac: float,
    metrics: dict[str, bool],
) -> None:
    """Fill `result` from a v2 table: per encoder and metric, the LR winners, D = unique_targets,
    validation loss weighted by seed spread; the LR search, the known-floor check, LR coverage,
    N_sat(D) and the paper's law beside (`scaling.beside_laws`)."""
    encs = cells.encoders(rows)
    result["assumptions"] = cells.ASSUMPTIONS_V2
    result["encoders"] = [str(e) if e is not None else None for e in encs]
    result["lr_search"] = cells.lr_search(rows)
    result["lr_at_edge"] = cells.lr_edge_cells(result["lr_search"])
    floor, eval_floor = _common_value(rows, "bayes_floor"), _common_value(rows, "eval_floor")
    for enc in encs:
        sel = cells.fitted_rows(rows, enc)
        for metric, higher in metrics.items():
            if not any(metric in r for r in sel):
                continue
            points = load_points(sel, metric, higher, v2=True)
            m = fit_metric(points, higher, n_boot, holdout_frac, seed_weights=metric == "valid_loss")
            m["encoder"], m["metric"] = enc, metric
            if metric == "valid_loss" and floor is not None:
                m["known_floor"] = cells.known_floor(m.get("joint", {}), floor, eval_floor)
            result["metrics"][cells.metric_key(metric, enc, len(encs))] = m
    result.update(beside_laws.analyse(rows, metrics, n_boot))


def summary_lines(result: dict[str, Any]) -> list[str]:
    """What `scalerec fit` prints: per metric the joint exponents, each one either with its 95% CI
    or with the words "not identified" and why, and the extrapolation test's verdict."""
    lines = []
    if result.get("lr_at_edge"):
        lines.append(
            f"LR search: {len(result['lr_at_edge'])} cells chose an LR at the edge of their grid (widen it): "
            + ", ".join(result["lr_at_edge"])
        )
    lines += beside_laws.coverage_lines(result)
    for metric, m in result["metrics"].items():
        if "known_floor" in m:
            lines.append(cells.floor_line(metric, m["known_floor"]))
        joint = m.get("joint", {})
        if "coef" not in joint:
            lines.append(f"{metric}: no joint law ({joint.get('skipped') or m.get('skipped', 'skipped')})")
            continue
        for name, ident in joint.get("identification", {}).items():
            value, ci = joint["coef"][name], joint["ci95"].get(name, [float("nan")] * 2)
            if ident["identified"]:
                lines.append(f"{metric}: {name} = {value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] (95% CI)")
            else:
                lines.append(f"{metric}: {name} not identified by these runs: {'; '.join(ident['reasons'])}")
        floor_note = identify.floor_at_bound(joint)
        if floor_note:
            lines.append(f"{metric}: {floor_note}")
        co = m.get("compute_optimal", {})
        if "omitted" in co:
            lines.append(f"{metric}: no compute-optimal allocation: {co['omitted']}")
        ex = m.get("extrapolation", {})
        if "table" in ex:
            errs = ", ".join(f"{r['predictor']} {100 * r['mean_rel_error']:.1f}%" for r in ex["table"])
            inside = ex.get("fraction_inside")
            lines.append(
                f"{metric}: extrapolation to {ex['n_heldout']} held-out runs, mean rel. error {errs}"
                + (f"; {100 * inside:.0f}% inside the 95% prediction interval" if inside is not None else "")
                + ("; the law beats both baselines" if ex.get("law_beats_baselines") else
                   "; the law does not beat both baselines"
                   + (f" (ties {' and '.join(ex['law_ties'])})" if ex.get("law_ties") else ""))
            )
        elif ex:
            lines.append(f"{metric}: extrapolation test skipped: {ex['skipped']}")
    return lines + beside_laws.summary_lines(result)
