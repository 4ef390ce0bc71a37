"""Learning-curve figures of a transfer study: NDCG@10 against the target data fraction (one line per
strategy) and against the pretrained model's size (issue 20: pretraining should matter most where
target data is scarce, so the table is read as curves).

Reads only the rows `transfer_report` builds (no torch). Several seeds of one cell are averaged;
the error bar spans their min..max (one seed: the bootstrap CI over test users).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

METRIC = "ndcg@10"


def _points(rows: list[dict[str, Any]], key: str) -> dict[str, list[tuple[float, float, float, float]]]:
    """strategy → sorted [(x, mean, lo, hi)] over the rows that have `key` and a score."""
    cells: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        x, block = r.get(key), r.get("overall") or {}
        if x is not None and METRIC in block:
            cells[(r["strategy"], float(x))].append(block)
    out: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for (strategy, x), blocks in cells.items():
        vals = np.array([b[METRIC] for b in blocks], dtype=float)
        if len(vals) > 1:
            lo, hi = float(vals.min()), float(vals.max())
        else:
            lo, hi = (blocks[0].get("ci", {}).get(METRIC) or (vals[0], vals[0]))[:2]
        out[strategy].append((x, float(vals.mean()), float(lo), float(hi)))
    return {s: sorted(p) for s, p in out.items()}


def _figure(
    points: dict[str, list[tuple[float, float, float, float]]], xlabel: str, title: str, path: Path
) -> Path | None:
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    cmap = plt.get_cmap("tab20")  # the default cycle has 10 colours: an 11th line repeated the 1st
    for i, (strategy, pts) in enumerate(sorted(points.items())):
        x, y, lo, hi = (np.array(v) for v in zip(*pts, strict=True))
        yerr = np.vstack([np.maximum(y - lo, 0), np.maximum(hi - y, 0)])
        from_scratch = strategy.startswith("tuned") or strategy in ("scratch", "most-popular")
        ax.errorbar(x, y, yerr=yerr, marker="s" if from_scratch else "o", capsize=3, label=strategy,
                    color=cmap(((2 * i) % 20 + (i // 10) % 2) / 20), linestyle="--" if from_scratch else "-")
    if len({p[0] for pts in points.values() for p in pts}) > 1:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test NDCG@10 (full ranking)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_plots(
    rows: list[dict[str, Any]], out_dir: Path, figures: tuple[str, ...] = ("fraction", "size")
) -> list[Path]:
    """`transfer_vs_fraction.png` and `transfer_vs_size.png` in `out_dir` (a figure is skipped when
    no row carries its x value, or when `figures` leaves it out); returns the files written."""
    by_fraction = _points(rows, "target_fraction")
    largest = max((r.get("target_fraction") or 0.0 for r in rows), default=0.0)
    full_data = [r for r in rows if (r.get("target_fraction") or 0.0) == largest]
    by_size = _points(full_data, "pretrained_params")
    written = [
        _figure(by_fraction, "fraction of target training users", "NDCG@10 vs target data",
                out_dir / "transfer_vs_fraction.png") if "fraction" in figures else None,
        _figure(by_size, "pretrained non-embedding parameters",
                f"NDCG@10 vs pretrained size (target fraction {largest:g})",
                out_dir / "transfer_vs_size.png") if "size" in figures else None,
    ]
    return [p for p in written if p is not None]
