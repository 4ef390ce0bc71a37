"""Report sections for what a v2 fit reports beside its laws (`scaling.beside_laws`): LR-search
coverage in words, the saturation size N_sat(D), and the paper's NDCG@5 law beside its 0.094.
Each returns "" when fits.json lacks its key (v1 fits), so older reports are unchanged."""

from __future__ import annotations

import html
from typing import Any

from scalerec.scaling.html_table import html_table
from scalerec.scaling.paper_law import PAPER, PAPER_COLUMN, SELECT_ON


def lr_coverage_section(fits: dict[str, Any]) -> str:
    """Sizes whose LR search is incomplete, in words (their LR choice is not a search), and the grid."""
    cov = fits.get("lr_coverage")
    if not cov:
        return ""
    bad = [e for e in cov if not e["complete"]]
    words = (
        "<ul class='flag'>" + "".join(f"<li>{html.escape(e['note'])}.</li>" for e in bad) + "</ul>"
        if bad
        else "<p>Every size ran its whole LR grid.</p>"
    )
    rows = [
        {**e, "lr_grid": ", ".join(f"{v:.4g}" for v in e["lr_grid"]), "lrs_done": len(e["lrs_done"])}
        for e in cov
    ]
    cols = ["encoder", "size", "lr_grid", "lrs_done", "n_runs", "n_ok", "n_failed", "complete"]
    return "<h2>LR search coverage</h2>" + words + html_table(rows, cols)


SAT_COLUMNS = [
    "d",
    "epochs",
    "subset",
    "best_size",
    "best_mean",
    "n_sat_size",
    "n_sat",
    "pooled_seed_std",
    "pooled_from",
    "note",
]
SIZE_COLUMNS = [
    "d",
    "epochs",
    "size",
    "n",
    "n_seeds",
    "mean",
    "std",
    "std_used",
    "gap",
    "noise",
    "within_noise",
    "lrs",
]
PAPER_COLUMNS = [
    "encoder",
    "a",
    "b",
    "b_boot_lo",
    "b_boot_hi",
    "b_ols_lo",
    "b_ols_hi",
    "r2_log",
    "n_points",
    "paper_b",
    "note",
]


def _saturation_tables(e: dict[str, Any], flagged: set[tuple[Any, Any]]) -> str:
    """One (encoder, metric): N_sat per D point, then every size's mean, spread and noise."""

    def star(size: Any) -> Any:
        return f"{size}*" if (e["encoder"], size) in flagged else size

    summary, detail = [], []
    for p in e["points"]:
        head = {"d": p["d"], "epochs": p["epochs"], "subset": p["subset"], "note": p.get("skipped")}
        summary.append(
            {
                **p,
                **head,
                "best_size": star(p.get("best_size")),
                "n_sat_size": star(p.get("n_sat_size")),
            }
        )
        lrs = [", ".join(f"{v:.4g}" for v in s["lrs"]) for s in p["sizes"]]
        detail += [
            {**head, **s, "size": star(s["size"]), "lrs": lr} for s, lr in zip(p["sizes"], lrs, strict=True)
        ]
    label = " / ".join(str(x) for x in (e["metric"], e["encoder"]) if x is not None)
    return (
        f"<h3>{html.escape(label)} ({'higher' if e['higher_is_better'] else 'lower'} is better)</h3>"
        + html_table(summary, SAT_COLUMNS)
        + "<details><summary>every size</summary>"
        + html_table(detail, SIZE_COLUMNS)
        + "</details>"
    )


def saturation_section(fits: dict[str, Any]) -> str:
    """N_sat(D) per encoder and metric (`scaling.saturation`); sizes with an incomplete LR search starred."""
    entries = fits.get("saturation")
    if not entries:
        return ""
    flagged = {(e["encoder"], e["size"]) for e in fits.get("lr_coverage", []) if not e["complete"]}
    head = (
        f"<h2>Saturation size N_sat(D)</h2><p>{html.escape(entries[0]['rule'])} Sizes marked * "
        "have an incomplete LR search (their LR choice is not a search).</p>"
    )
    return head + "".join(_saturation_tables(e, flagged) for e in entries)


def paper_metric_section(fits: dict[str, Any]) -> str:
    """The paper's law NDCG@5 = a·D^b per encoder beside the paper's own fit."""
    entries = fits.get("paper_metric")
    if not entries:
        return ""
    parts = [
        f"<h2>The paper's metric: {html.escape(PAPER_COLUMN)} = a·D^b</h2><p>Envelope: at each D the "
        f"size (and training length) with the best mean {html.escape(SELECT_ON)} over seeds, chosen on "
        f"validation; test is only read. Paper: {html.escape(str(PAPER['source']))}. D here is unique "
        "training targets. The bootstrap resamples seeds inside cells (seed and selection noise); "
        "the OLS t-interval carries lack of fit. Where a smaller D is also a shorter run (fewer steps: "
        "cooldown branches of one trunk), b mixes data with training length; the paper trained every "
        "subset for many epochs.</p>"
    ]
    rows = []
    for e in entries:
        ci, ci_ols = e.get("ci95", {}).get("b") or [None] * 2, e.get("ci95_ols", {}).get("b") or [None] * 2
        rows.append(
            {
                "encoder": e["encoder"],
                "a": e.get("a"),
                "b": e.get("b"),
                "b_boot_lo": ci[0],
                "b_boot_hi": ci[1],
                "b_ols_lo": ci_ols[0],
                "b_ols_hi": ci_ols[1],
                "r2_log": e.get("r2_log"),
                "n_points": e["n_points"],
                "paper_b": PAPER["b"],
                "note": e.get("skipped"),
            }
        )
    parts.append(html_table(rows, PAPER_COLUMNS))
    flagged = {(e["encoder"], e["size"]) for e in fits.get("lr_coverage", []) if not e["complete"]}
    cols = ["d", "subset", "size", "n_seeds", "steps", "epochs", SELECT_ON, PAPER_COLUMN, "candidates"]
    for e in entries:
        pts = [
            {**p, "size": f"{p['size']}*" if (e["encoder"], p["size"]) in flagged else p["size"]}
            for p in e.get("points", [])
        ]
        if pts:
            head = f"<h4>envelope, {html.escape(str(e['encoder']))} (* = LR search incomplete)</h4>"
            parts.append(head + html_table(pts, cols))
    return "".join(parts)
