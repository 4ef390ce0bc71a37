"""The transfer table: does pretraining pay off on a new domain, and at what cost?

Reads every fine-tuning output (`transfer.json` + `ranks.npz`, written by `finetune`) under a
directory and writes `transfer_report.md` and `transfer_report.json`: strategy × (NDCG@10, HR@10,
MRR) with bootstrap CIs, cold-start NDCG@10, the source-domain metric after fine-tuning
(forgetting), training FLOPs and wall time. It then answers the paper's questions with paired
bootstrap differences on the same test users — does the best fine-tuning strategy beat scratch
(and ID-SASRec), by how much, and does zero-shot beat most-popular — stating whatever the runs give.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.errors import UserError
from scalerec.io import atomic_write
from scalerec.train import numerics
from scalerec.transfer.plots import write_plots

METRICS = ("ndcg@10", "hr@10", "mrr")
BASELINES = ("zero-shot", "scratch", "id-scratch")


def per_user(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Per-user value of `metric` (`ndcg@k`, `hr@k`, `mrr`) from 1-based ranks (0 = unscorable)."""
    r = np.asarray(ranks, dtype=np.float64)
    valid = r > 0
    out = np.zeros_like(r)
    if metric == "mrr":
        out[valid] = 1.0 / r[valid]
        return out
    name, k = metric.split("@")
    hit = valid & (r <= int(k))
    if name == "hr":
        out[hit] = 1.0
    elif name == "ndcg":
        out[hit] = 1.0 / np.log2(r[hit] + 1.0)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return out


def paired_diff(
    a: np.ndarray, b: np.ndarray, metric: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Mean of metric(a) − metric(b) over the same users, with a 95% paired-bootstrap CI and the
    relative change `(A − B) / B`."""
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs the same users ({len(a)} vs {len(b)} ranks)")
    va, vb = per_user(a, metric), per_user(b, metric)
    diff = va - vb
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(n_boot, len(diff)))
    boots = diff[idx].mean(axis=1)
    base = float(vb.mean())
    return {
        "diff": float(diff.mean()),
        "lo": float(np.quantile(boots, 0.025)),
        "hi": float(np.quantile(boots, 0.975)),
        "relative": float(diff.mean() / base) if base > 0 else float("inf"),
    }


@dataclasses.dataclass
class Entry:
    """One fine-tuning output: its summary and its per-user test ranks."""

    path: Path
    summary: dict[str, Any]
    ranks: dict[str, np.ndarray]

    @property
    def strategy(self) -> str:
        return str(self.summary["strategy"])


def load_entries(root: str | Path) -> list[Entry]:
    """Every `transfer.json` under `root` (any depth), with its `ranks.npz`."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"transfer report: {root} is not a directory")
    entries = []
    for path in sorted(root.rglob("transfer.json")):
        summary = json.loads(path.read_text(encoding="utf-8"))
        if summary.get("format_version") != 1:
            raise UserError(f"{path}: unsupported format_version {summary.get('format_version')!r}")
        with np.load(path.parent / "ranks.npz") as npz:
            ranks = {k: npz[k] for k in npz.files}
        entries.append(Entry(path.parent, summary, ranks))
    if not entries:
        raise UserError(f"transfer report: no transfer.json found under {root}")
    return entries


def _cell(block: dict[str, Any] | None, metric: str) -> str:
    if not block or metric not in block:
        return "n/a" if not block or "status" not in block else "cannot score"
    ci = block.get("ci", {}).get(metric)
    return f"{block[metric]:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


def _row(e: Entry) -> dict[str, Any]:
    test = e.summary["test"]
    source = e.summary.get("source") or {}
    return {
        "strategy": e.strategy,
        "overall": test["overall"],
        "cold": test.get("cold"),
        "source_before": source.get("before"),
        "source_after": source.get("after"),
        "flops": e.summary.get("flops", 0.0),
        "wall_time_s": e.summary.get("wall_time_s", 0.0),
        "targets_seen": e.summary.get("targets_seen", 0),
        "target_fraction": e.summary.get("target_fraction", 1.0),
        "pretrained_size": e.summary.get("pretrained_size"),
        "pretrained_params": e.summary.get("pretrained_params"),
        "seed": (e.summary.get("config") or {}).get("seed"),
        "path": str(e.path),
    }


def _selection_score(e: Entry) -> float:
    """The best fine-tuning strategy is chosen on validation NDCG@10 (test only when absent), so the
    headline comparison is not selected on the test users it is measured on."""
    valid = e.summary.get("valid") or {}
    return float(valid.get("ndcg@10", e.summary["test"]["overall"]["ndcg@10"]))


def _comparisons(entries: list[Entry]) -> dict[str, Any]:
    by = {e.strategy: e for e in entries}
    by = {s: e for s, e in by.items() if "ndcg@10" in e.summary["test"]["overall"]}
    tuned = [e for e in by.values() if e.strategy not in BASELINES]
    out: dict[str, Any] = {}
    if tuned:
        best = max(tuned, key=_selection_score)
        out["best_finetune"] = best.strategy
        for base in ("scratch", "id-scratch"):
            if base in by:
                out[f"best_vs_{base}"] = paired_diff(best.ranks["test"], by[base].ranks["test"], "ndcg@10")
    if "zero-shot" in by and "most_popular" in by["zero-shot"].ranks:
        zs = by["zero-shot"].ranks
        out["zero_shot_vs_most_popular"] = paired_diff(zs["test"], zs["most_popular"], "ndcg@10")
    return out


def _verdict(cmp: dict[str, float], a: str, b: str) -> str:
    """One sentence: who wins on NDCG@10, by how much, and whether the paired 95% CI excludes 0."""
    if cmp["lo"] > 0:
        head = f"{a} beats {b}"
    elif cmp["hi"] < 0:
        head = f"{a} does not beat {b} ({b} is better)"
    else:
        head = f"{a} does not significantly beat {b} (95% CI includes 0)"
    return (f"- {head}: NDCG@10 difference {cmp['diff']:+.4f} [{cmp['lo']:+.4f}, {cmp['hi']:+.4f}], "
            f"{cmp['relative']:+.1%} relative.")


def render_markdown(rows: list[dict[str, Any]], cmp: dict[str, Any], most_popular: dict | None) -> str:
    """The report as Markdown: the table, then one sentence per question."""
    head = ["strategy", *[m.upper() for m in METRICS], "cold NDCG@10", "source NDCG@10 before→after",
            "train FLOPs", "wall s"]
    lines = ["# Transfer report", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table = list(rows)
    if most_popular:
        table.append({"strategy": "most-popular", "overall": most_popular.get("overall"),
                      "cold": most_popular.get("cold"), "flops": 0.0, "wall_time_s": 0.0})
    for r in table:
        before, after = r.get("source_before"), r.get("source_after")
        src = f"{before['ndcg@10']:.4f}→{after['ndcg@10']:.4f}" if before and after else "n/a"
        cells = [r["strategy"], *[_cell(r["overall"], m) for m in METRICS], _cell(r["cold"], "ndcg@10"),
                 src, f"{r['flops']:.3g}", f"{r['wall_time_s']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "CIs: 95% bootstrap over test users. Cold = test targets never in the target's "
              "training interactions (scored from text alone). The best fine-tuning strategy is picked "
              "on validation NDCG@10; differences are paired bootstraps over the same test users.", "",
              "## Findings", ""]
    if "best_vs_scratch" in cmp:
        lines.append(_verdict(cmp["best_vs_scratch"], f"fine-tuning ({cmp['best_finetune']})", "scratch"))
    else:
        lines.append("- No fine-tuned run and scratch run to compare.")
    if "best_vs_id-scratch" in cmp:
        lines.append(_verdict(cmp["best_vs_id-scratch"], f"fine-tuning ({cmp['best_finetune']})",
                              "ID-SASRec (scratch)"))
    if "zero_shot_vs_most_popular" in cmp:
        lines.append(_verdict(cmp["zero_shot_vs_most_popular"], "zero-shot", "most-popular"))
    else:
        lines.append("- No zero-shot run to compare with most-popular.")
    return "\n".join(lines) + "\n"


def transfer_report(root: str | Path) -> Path:
    """Build the report of every fine-tuning output under `root`; return the Markdown path."""
    root = Path(root)
    entries = load_entries(root)
    order = {s: i for i, s in enumerate(("zero-shot", "scratch", "id-scratch"))}
    entries.sort(key=lambda e: (order.get(e.strategy, 9), e.strategy, str(e.path)))
    rows = [_row(e) for e in entries]
    cmp = _comparisons(entries)
    most_popular = next((e.summary["most_popular"] for e in entries if e.summary.get("most_popular")), None)
    report = {"format_version": 1, "rows": rows, "comparisons": cmp, "most_popular": most_popular}
    with atomic_write(root / "transfer_report.json") as fh:  # strict JSON: an inf ratio becomes null
        fh.write(numerics.dumps(report, indent=2) + "\n")

    figures = write_plots(rows, root)
    out = root / "transfer_report.md"
    with atomic_write(out) as fh:
        fh.write(render_markdown(rows, cmp, most_popular))
        if figures:
            fh.write("\n## Figures\n\n" + "".join(f"![{p.stem}]({p.name})\n" for p in figures))
    return out
