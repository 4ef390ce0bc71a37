"""`scalerec report DIR`: one self-contained HTML page (figures inlined as base64) + the PNGs.

The report answers the product question — which model size and how much data for this compute —
with the fitted exponents and their 95% CIs, the compute-optimal allocation, the extrapolation
test on held-out runs beyond the fitted range, and a table of every run so each number can be
traced. An exponent the runs do not identify is said to be so in words, and nothing built on it
(the compute-optimal allocation, the iso-FLOP figure) is shown.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from scalerec.io import atomic_write, read_json
from scalerec.scaling import identify
from scalerec.scaling.extrapolate import TIE_RTOL
from scalerec.scaling.fits import FITS_FORMAT, fit
from scalerec.scaling.html_table import html_table
from scalerec.scaling.plots import all_figures
from scalerec.scaling.report_beside import lr_coverage_section, paper_metric_section, saturation_section
from scalerec.scaling.sweep import read_results

RUN_COLUMNS = [
    "run_id",
    "size",
    "subset",
    "seed",
    "lr",
    "n_params",
    "n_params_non_embedding",
    "n_interactions",
    "targets_seen",
    "unique_targets",
    "encoder",
    "lr_selected",
    "lr_at_edge",
    "n_seeds",
    "seed_std_valid_loss",
    "holdout",
    "flops",
    "wall_time_s",
    "valid_loss",
    "valid_ndcg@10",
    "test_ndcg@10",
    "test_hr@10",
    "status",
    "error",
]


def _coef_rows(law: dict[str, Any]) -> list[dict[str, Any]]:
    ci = law.get("ci95", {})
    return [
        {
            "coefficient": k,
            "value": v,
            "ci95_lo": ci.get(k, [None, None])[0],
            "ci95_hi": ci.get(k, [None, None])[1],
        }
        for k, v in law.get("coef", {}).items()
    ]


def _flags(law: dict[str, Any]) -> str:
    """One sentence per exponent that is not identified, saying why (nothing when all are)."""
    items = [
        f"<li><b>{html.escape(name)} not identified</b>: {html.escape('; '.join(v['reasons']))}.</li>"
        for name, v in law.get("identification", {}).items()
        if not v["identified"]
    ]
    floor_note = identify.floor_at_bound(law)
    if floor_note:
        items.append(f"<li><b>floor on its bound</b>: {html.escape(floor_note)}.</li>")
    return f"<ul class='flag'>{''.join(items)}</ul>" if items else ""


def _law_section(title: str, law: dict[str, Any]) -> str:
    if "skipped" in law:
        return f"<h4>{html.escape(title)}</h4><p>skipped: {html.escape(law['skipped'])}</p>"
    cols = ["coefficient", "value", "ci95_lo", "ci95_hi"]
    return (
        f"<h4>{html.escape(title)}: {html.escape(law.get('form', ''))}</h4>"
        + html_table(_coef_rows(law), cols)
        + _flags(law)
    )


def _compute_optimal(co: dict[str, Any]) -> str:
    rel = co["flops_relation"]
    if "omitted" in co:
        return (
            "<h4>compute-optimal allocation</h4><p class='flag'><b>Not shown</b>: "
            f"{html.escape(co['omitted'])}.</p>"
        )
    ci = co.get("ci95", {})
    a_ci, b_ci = ci.get("a", [math.nan] * 2), ci.get("b", [math.nan] * 2)
    return (
        f"<h4>compute-optimal allocation</h4><p>N*(C) ∝ C^{co['a']:.3f} [{a_ci[0]:.3f}, {a_ci[1]:.3f}], "
        f"D*(C) ∝ C^{co['b']:.3f} [{b_ci[0]:.3f}, {b_ci[1]:.3f}] (95% CI), under C = "
        f"{rel['k']:.3g}·N^{rel['gamma']:.3f}·D fitted on the runs (R² log {rel['r2_log']:.3f}).</p>"
        + html_table(co["table"], ["flops", "n_opt", "d_opt", "predicted"])
    )


def _extrapolation(ex: dict[str, Any]) -> str:
    head = "<h4>extrapolation test (held-out runs beyond the fitted range)</h4>"
    if "skipped" in ex:
        return head + f"<p>skipped: {html.escape(ex['skipped'])}.</p>"
    inside = ex.get("fraction_inside")
    verdict = "beats both baselines" if ex["law_beats_baselines"] else "does <b>not</b> beat both baselines"
    if ex.get("law_ties"):
        ties = html.escape(" and ".join(ex["law_ties"]))
        verdict += f" (it ties {ties}: errors within {100 * TIE_RTOL:g}% of each other)"
    text = (
        f"<p>Joint law fitted on {ex['n_fit']} runs ({html.escape(ex['rule'])}); {ex['n_heldout']} held-out "
        f"runs with N ≥ {ex['n_factor']:g}× and compute ≥ {ex['c_factor']:g}× the largest fitted run "
        f"({ex['n_excluded']} runs in between used for neither). The law {verdict}"
        + (
            f"; {100 * inside:.0f}% of held-out values lie inside its 95% prediction interval"
            if inside is not None
            else ""
        )
        + ".</p>"
    )
    table = html_table(ex["table"], ["predictor", "mean_rel_error"])
    rows = [
        {
            "run_id": r,
            "actual": ex["actual"][i],
            **{k: v[i] for k, v in ex["predicted"].items()},
            "pi95_lo": ex.get("interval_lo", [None] * len(ex["actual"]))[i],
            "pi95_hi": ex.get("interval_hi", [None] * len(ex["actual"]))[i],
            "inside": ex.get("inside", [None] * len(ex["actual"]))[i],
        }
        for i, r in enumerate(ex["heldout_run_ids"])
    ]
    cols = ["run_id", "actual", *ex["predicted"], "pi95_lo", "pi95_hi", "inside"]
    return head + text + table + html_table(rows, cols) + _flags(ex["fit"])


def _interpolation(ex: dict[str, Any]) -> str:
    head = "<h4>interpolation check (largest-compute fitted runs held out, inside the fitted range)</h4>"
    if "mean_rel_error" not in ex:
        return head + f"<p>skipped: {html.escape(ex.get('skipped', ''))}</p>" if ex else ""
    return head + (
        f"<p>joint law fitted on {ex['n_fit']} runs below {ex['cutoff_flops']:.3g} FLOPs predicts the "
        f"{ex['n_heldout']} runs above with mean relative error {100 * ex['mean_rel_error']:.2f}% "
        f"(max {100 * ex['max_rel_error']:.2f}%). These runs lie inside the fitted N and D ranges, so "
        "this is not an extrapolation.</p>"
    )


def _v2_notes(metric: str, m: dict[str, Any]) -> list[str]:
    """The known-floor check and the seed weighting of a v2 fit (nothing for a v1 fit)."""
    from scalerec.scaling.cells import floor_line

    parts = []
    if "known_floor" in m:
        kf = m["known_floor"]
        ok = kf.get("E_within_bar") and kf.get("alpha_N_within_bar")
        parts.append(
            f"<p class='{'' if ok else 'flag'}'><b>Known floor</b>: "
            f"{html.escape(floor_line(metric, kf))}.</p>"
        )
    if "seed_noise" in m:
        sn = m["seed_noise"]
        pooled = f", pooled seed std {sn['pooled_seed_std']:.4g}" if "pooled_seed_std" in sn else ""
        parts.append(
            f"<p>Seed noise in the joint fit: {sn['n_runs_with_seed_std']} of {sn['n_runs']} runs have "
            f"a seed spread{pooled}; weights: {html.escape(sn['weights'])}.</p>"
        )
    return parts


def _lr_search(fits: dict[str, Any]) -> str:
    """The v2 sweep's LR search: every LR tried per cell, the winner, and winners at the grid's edge."""
    table = fits.get("lr_search")
    if not table:
        return ""
    edge = fits.get("lr_at_edge", [])
    words = (
        f"<p class='flag'><b>{len(edge)} cells chose an LR at the edge of their grid</b> (the optimum "
        f"may lie outside it; widen the grid): {html.escape(', '.join(edge))}.</p>"
        if edge
        else "<p>Every LR winner is interior to its grid.</p>"
    )
    cols = ["encoder", "size", "subset", "seed", "holdout", "lr", "valid_loss", "lr_selected", "lr_at_edge"]
    return (
        "<h2>LR search</h2><p>Only the selected row of each cell is fitted.</p>"
        + words
        + html_table(table, cols)
    )


def _metric_section(metric: str, m: dict[str, Any], figures: list[tuple[Path, str]]) -> str:
    parts = [
        f"<h2>{html.escape(metric)}</h2>",
        f"<p>{m.get('n_points', 0)} runs fitted; quantity fitted: "
        f"{html.escape(m.get('fitted_quantity', ''))}.</p>",
    ]
    if "skipped" in m:
        return "".join(parts) + f"<p>skipped: {html.escape(m['skipped'])}</p>"
    parts += _v2_notes(metric, m)
    parts.append(_law_section("joint law L(N, D)", m["joint"]))
    if m.get("compute_optimal"):
        parts.append(_compute_optimal(m["compute_optimal"]))
    for name, law in m.get("univariate", {}).items():
        parts.append(_law_section(f"{metric} vs {name} (envelope)", law))
    for name, law in m.get("plain_power", {}).items():
        parts.append(_law_section(f"{metric} = a·{name}^b (paper form, envelope)", law))
    if m.get("extrapolation"):
        parts.append(_extrapolation(m["extrapolation"]))
    parts.append(_interpolation(m.get("interpolation_check", {})))
    for i, (fig, caption) in enumerate(figures, 1):
        data = base64.b64encode(fig.read_bytes()).decode()
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}"/>'
            f"<figcaption>Figure {i} ({html.escape(metric)}). {html.escape(caption)}</figcaption></figure>"
        )
    return "".join(parts)


STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ccc;"
    "padding:2px 6px;text-align:right}img{max-width:100%}figure{margin:1em 0}"
    ".flag{color:#a00}figcaption{font-size:13px;color:#444;max-width:900px}"
)


def report(out_dir: str | Path, refit: bool = False, n_boot: int = 100) -> Path:
    """Write `<out_dir>/report.html` and `<out_dir>/figures/*.png` from `fits.json` (fitted first
    when absent or `refit`) and `results.parquet`; returns the HTML path."""
    out_dir = Path(out_dir)
    fits = read_json(out_dir / "fits.json") if (out_dir / "fits.json").is_file() else {}
    if refit or fits.get("format_version") != FITS_FORMAT:  # absent, or written by an older fitter
        fits = fit(out_dir, n_boot=n_boot)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    figures = all_figures(fits, fig_dir)
    rows = sorted(read_results(out_dir), key=lambda r: (r.get("flops") or 0, r.get("run_id")))
    body = [
        f"<h1>Scaling report — {html.escape(str(out_dir))}</h1>",
        f"<p>{fits['n_runs']} runs ({fits['n_runs_ok']} ok); fitted from {html.escape(fits['source'])} "
        f"(sha256 {fits.get('source_sha256', '')[:12]}); {fits['n_boot']} bootstrap refits per law.</p>",
        "<ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in fits["assumptions"]) + "</ul>",
    ]
    body.append(lr_coverage_section(fits))
    body += [_metric_section(k, m, figures.get(k, [])) for k, m in fits["metrics"].items()]
    body += [saturation_section(fits), paper_metric_section(fits), _lr_search(fits)]
    body.append(
        "<h2>every run</h2>" + html_table(rows, [c for c in RUN_COLUMNS if any(c in r for r in rows)])
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>scaling report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
    path = out_dir / "report.html"
    with atomic_write(path) as fh:
        fh.write(page)
    return path
