"""What a v2 fit reports beside its laws: LR-search coverage, the saturation size N_sat(D), and the
scaling paper's own law over D. These read measured means, not fitted laws, so they still say
something when a joint law does not identify alpha_N (issue 18 item 5: "if not, say so with the
numbers").

fits.json keys (top level, v2 tables only; a v1 table's fits.json is unchanged):
* `lr_coverage`: per (encoder, size), the LRs done against the grid (`scaling.lr_coverage`).
* `saturation`: per encoder and metric (validation loss and NDCG@10), N_sat at every D point
  (`scaling.saturation`).
* `paper_metric`: per encoder, sampled-10K NDCG@5 = a·D^b on the validation-chosen envelope
  (`scaling.paper_law`) — only when the table has that column.
"""

from __future__ import annotations

from typing import Any

from scalerec.scaling import cells, lr_coverage, paper_law, saturation


def analyse(rows: list[dict[str, Any]], metrics: dict[str, bool], n_boot: int) -> dict[str, Any]:
    """The three analyses above for every encoder of a v2 table (`metrics`: column → higher is better)."""
    out: dict[str, Any] = {"lr_coverage": lr_coverage.lr_coverage(rows), "saturation": []}
    paper = paper_law.has_column(rows)
    if paper:
        out["paper_metric"] = []
    for enc in cells.encoders(rows):
        sel = cells.fitted_rows(rows, enc)
        for metric, higher in metrics.items():
            if any(r.get(metric) is not None for r in sel):
                out["saturation"].append(saturation.saturation(sel, enc, metric, higher))
        if paper:
            out["paper_metric"].append(paper_law.fit_paper_law(sel, enc, n_boot))
    return out


def coverage_lines(result: dict[str, Any]) -> list[str]:
    """`scalerec fit`'s warnings on incomplete LR searches (printed before the laws)."""
    return [
        f"LR search incomplete: {e['note']}" for e in lr_coverage.incomplete(result.get("lr_coverage", []))
    ]


def summary_lines(result: dict[str, Any]) -> list[str]:
    """`scalerec fit`'s lines on N_sat and the paper's law (printed after the laws; none for v1)."""
    coverage = result.get("lr_coverage", [])
    lines = []
    for entry in result.get("saturation", []):
        flagged = lr_coverage.incomplete_sizes(coverage, entry["encoder"])
        lines.append(saturation.summary_line(entry, flagged))
    lines += [paper_law.summary_line(e) for e in result.get("paper_metric", [])]
    return lines
