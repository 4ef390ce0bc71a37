"""The study's result: a Markdown table per target with CIs and verdicts, the LR searches, the cold-start
comparison, learning-curve plots, and the finding stated in words whichever way it goes.

Only final configurations are shown: a fine-tuning cell of an LR search appears only if its LR won on
validation (`store.choices`); the best strategy of a (target, fraction) is also picked on validation.
Differences are paired bootstraps over the same test users (`scalerec.transfer.report.paired_diff`),
seed 0 against seed 0; cells with several seeds also show the mean over seeds with a t-interval.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.eval.metrics import seed_interval
from scalerec.io import atomic_write
from scalerec.train import numerics
from scalerec.transfer.plots import write_plots
from scalerec.transfer.report import paired_diff
from scalerec.transfer.study.cells import StudySpec
from scalerec.transfer.study.store import Store, choices, stale

NOT_FINETUNED = ("scratch", "zero-shot")
CUT_MARK = "†"
CUT_NOTE = (
    f"{CUT_MARK}: stopped by the time cap (`cell_max_minutes`) before early stopping. How far such a cell "
    "got depends on how many cells shared the GPU, so it is not like-for-like with a cell that stopped early."
)


def cut_by_time(rows: Sequence[dict[str, Any] | None]) -> list[str]:
    """The cells among `rows` that the time cap stopped, not early stopping (None entries skipped)."""
    return sorted({r["cell"] for r in rows if r is not None and r.get("stopped_by_time")})


def label(row: dict[str, Any]) -> str:
    if row["kind"] == "baseline":
        return f"tuned {row['method']}"
    return "most-popular" if row["kind"] == "popular" else str(row["method"])


def final_rows(rows: list[dict[str, Any]], chosen: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of final configurations: baselines, most-popular, phase-3 cells, and the phase-2 cells
    that are not an LR-search point or whose LR won on validation."""
    out = []
    for r in rows:
        if r["kind"] in ("baseline", "popular") or (r["kind"] == "finetune" and r["phase"] == 3):
            out.append(r)
        elif r["kind"] == "finetune":
            won = chosen.get(r["group"], {}).get("cell")
            if not r.get("search") or won == r["cell"]:
                out.append(r)
    return out


def _fmt(block: dict[str, Any] | None, metric: str = "ndcg@10", ci: bool = True) -> str:
    if not block or metric not in block:
        return "cannot score" if block and "status" in block else "n/a"
    bounds = block.get("ci", {}).get(metric) if ci else None
    return f"{block[metric]:.4f}" + (f" [{bounds[0]:.4f}, {bounds[1]:.4f}]" if bounds else "")


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _word(d: dict[str, float]) -> str:
    return "better" if d["lo"] > 0 else "worse" if d["hi"] < 0 else "n.s."


def _diff_text(d: dict[str, float] | None) -> str:
    if d is None:
        return "—"
    return f"{d['diff']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] {_word(d)}"


class Results:
    """Rows and ranks of one work dir, indexed for the table."""

    def __init__(self, store: Store, spec: StudySpec) -> None:
        self.store, self.spec = store, spec
        rows = store.rows()
        self.chosen = choices(rows)
        self.pretrain = [r for r in rows if r["kind"] == "pretrain"]
        live: list[dict[str, Any]] = []
        self.stale: list[dict[str, Any]] = []
        for r in rows:
            (self.stale if stale(r, self.chosen) else live).append(r)
        self.final = final_rows(live, self.chosen)
        self.cells: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for r in self.final:
            self.cells[(r["target"], r["fraction"], r.get("size", ""), label(r))].append(r)

    def get(self, target: str, fraction: float, size: str, name: str, seed: int | None = None) -> dict | None:
        rows = self.cells.get((target, fraction, size, name), [])
        rows = [r for r in rows if seed is None or r["seed"] == seed]
        return min(rows, key=lambda r: r["seed"]) if rows else None

    def diff(self, a: dict | None, b: dict | None, mask: str | None = None) -> dict[str, float] | None:
        """Paired bootstrap of NDCG@10, a − b, over the same test users (optionally one slice)."""
        if a is None or b is None:
            return None
        ra, rb = self.store.ranks(a["cell"]), self.store.ranks(b["cell"])
        if "test" not in ra or "test" not in rb:
            return None
        keep = ra[mask] if mask else np.ones(len(ra["test"]), dtype=bool)
        if not keep.any():
            return None
        return paired_diff(ra["test"][keep], rb["test"][keep], "ndcg@10", self.spec.n_boot)

    def seed_diff(self, target: str, fraction: float, size: str, a: str, b: str) -> dict[str, float] | None:
        """Test NDCG@10 of `a` − `b`, paired by training seed: mean and 95% t-interval over the seeds both
        have (None with fewer than two). Unlike `diff`, it includes the variance between training runs,
        which on a small target is larger than the sampling of test users."""
        va, vb = (
            {r["seed"]: r["test"]["overall"].get("ndcg@10") for r in self.cells.get(key, [])}
            for key in ((target, fraction, size, a), (target, fraction, size, b))
        )
        return paired_by_seed(va, vb)

    def best(self, target: str, fraction: float, size: str) -> dict | None:
        """The fine-tuning strategy with the best validation NDCG@10 (seed 0), scratch excluded."""
        cands: list[dict[str, Any]] = []
        for s in self.spec.strategies:
            r = self.get(target, fraction, size, s, self.spec.seeds[0])
            if s not in NOT_FINETUNED and r is not None and r.get("valid_ndcg@10") is not None:
                cands.append(r)
        return max(cands, key=lambda r: float(r["valid_ndcg@10"])) if cands else None


def paired_by_seed(a: dict[int, float | None], b: dict[int, float | None]) -> dict[str, float] | None:
    """`a` − `b` over the training seeds both have a value for ({seed: metric} each): mean and 95%
    t-interval (None with fewer than two such seeds)."""
    both = {k: x - y for k in set(a) & set(b) if (x := a[k]) is not None and (y := b[k]) is not None}
    diffs = [float(both[k]) for k in sorted(both)]
    ci = seed_interval(diffs)
    if ci is None:
        return None
    return {"diff": float(np.mean(diffs)), "lo": ci[0], "hi": ci[1], "n_seeds": len(diffs)}


def _marks_cut(table: list[str]) -> bool:
    """Whether a Markdown table's body (past its header and rule lines) shows a time-cut mark."""
    return any(CUT_MARK in line for line in table[2:])


def _target_table(res: Results, target: str) -> list[str]:
    head = [
        "fraction",
        "size",
        "method",
        "seeds",
        "NDCG@10 (seed 0, 95% CI)",
        "mean over seeds [t-CI]",
        "HR@10",
        "cold NDCG@10",
        f"rare (≤{res.spec.rare_k}) NDCG@10",
        "valid NDCG@10",
        "LR",
        "Δ NDCG@10 vs scratch (seed 0, paired over users)",
        "Δ vs scratch over seeds [t-CI]",
    ]
    lines = [f"### {target}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = sorted(k for k in res.cells if k[0] == target)
    for _, fraction, size, name in keys:
        rows = res.cells[(target, fraction, size, name)]
        first = min(rows, key=lambda r: r["seed"])
        vals = [r["test"]["overall"].get("ndcg@10", float("nan")) for r in rows]
        ci = seed_interval(vals)
        mean = f"{np.mean(vals):.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
        scratch = res.get(target, fraction, size, "scratch", first["seed"])
        d = res.diff(first, scratch) if first["kind"] == "finetune" and name != "scratch" else None
        by_seed = res.seed_diff(target, fraction, size, name, "scratch") if name != "scratch" else None
        valid = first.get("valid_ndcg@10")
        cut = cut_by_time(rows)
        shown = name + (f" {CUT_MARK}{len(cut)}/{len(rows)}" if cut else "")
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{fraction:g}",
                    size or "—",
                    shown,
                    str(len(rows)),
                    _fmt(first["test"]["overall"]),
                    mean,
                    _fmt(first["test"]["overall"], "hr@10", ci=False),
                    _fmt(first["test"].get("cold"), ci=False),
                    _fmt(first["test"].get("rare"), ci=False),
                    "—" if valid is None else f"{valid:.4f}",
                    "—" if first.get("lr") is None else f"{first['lr']:g}",
                    _diff_text(d),
                    _diff_text(by_seed) if by_seed else "—",
                ]
            )
            + " |"
        )
    if _marks_cut(lines):  # the legend only where a mark needs it
        lines += ["", f"{CUT_MARK}k/n after a method: k of its n seeds' cells were cut by time. {CUT_NOTE}"]
    return lines


def _verdict(target: str, helped: list[tuple[float, bool]]) -> str:
    """One sentence from (fraction, pretraining significantly better than scratch) in increasing fraction.
    Scratch is the same architecture trained in the same fine-tuning loop; `_tuned_verdict` holds the
    comparison with the tuned recipes."""
    target = f"{target}, against the same model trained from scratch"
    if not helped:
        return f"{target}: no fraction has both a fine-tuned and a scratch result yet."
    good = [f for f, h in helped if h]
    if len(good) == len(helped):
        return (
            f"{target}: pretraining helps at every measured fraction (up to {helped[-1][0]:g}); "
            "it did not stop helping within the measured range."
        )
    if not good:
        first = helped[0][0]
        return f"{target}: pretraining does not significantly help at any measured fraction (from {first:g})."
    if helped[0][1]:
        stop = next(f for f, h in helped if not h)
        return (
            f"{target}: pretraining helps at fractions below {stop:g} "
            f"({', '.join(f'{f:g}' for f in good)}) and stops helping at {stop:g}."
        )
    return f"{target}: pretraining helps only at fractions {', '.join(f'{f:g}' for f in good)}."


def _curve(res: Results, target: str) -> tuple[list[str], dict[str, Any]]:
    """The learning-curve finding of one target at the key size, in words and as data.

    The verdict at a fraction rests on the headline pair (the first key strategy that is not scratch,
    against scratch) paired by training seed when both have several seeds: a paired bootstrap over the
    test users of one seed leaves out the variance between training runs, which on a small target is the
    larger part. With one seed it falls back to that bootstrap and says so. The best strategy on
    validation and the tuned baselines are compared on seed 0 as well, labelled as such."""
    size, lines, data = res.spec.key_size, [], {}  # type: tuple[str, list[str], dict[str, Any]]
    helped: list[tuple[float, bool]] = []
    cut_fractions: list[float] = []
    vs_tuned: list[tuple[float, str, dict[str, Any], bool]] = []
    seed0 = res.spec.seeds[0]
    pair = next((m for m in res.spec.key_strategies if m not in NOT_FINETUNED), "full")
    for f in res.spec.fractions:
        best, scratch = res.best(target, f, size), res.get(target, f, size, "scratch", seed0)
        head = res.get(target, f, size, pair, seed0)
        by_seed = res.seed_diff(target, f, size, pair, "scratch")
        d_head, d_best = res.diff(head, scratch), res.diff(best, scratch)
        tuned = {b: res.diff(best, res.get(target, f, "", f"tuned {b}", None)) for b in res.spec.baselines}
        strongest = _strongest_baseline(res, target, f)
        data[f"{f:g}"] = {
            "best": best and best["method"],
            "vs_scratch": d_best,
            f"{pair}_vs_scratch_seed0": d_head,
            f"{pair}_vs_scratch_by_seed": by_seed,
            **{f"vs_tuned_{b}": d for b, d in tuned.items()},
        }
        decisive = by_seed or d_head
        if decisive is None:
            lines.append(f"- fraction {f:g}: not measured yet.")
            continue
        decisive_rows = [r for m in (pair, "scratch") for r in res.cells.get((target, f, size, m), [])]
        decisive_cut = cut_by_time(decisive_rows)
        if decisive_cut:
            cut_fractions.append(f)  # not a verdict: the two sides may have had unequal compute
        else:
            helped.append((f, decisive["lo"] > 0))
        strongest_row = res.get(target, f, "", f"tuned {strongest}", None) if strongest else None
        tuned_cut = cut_by_time([best, strongest_row])
        if strongest is not None and (vs_best := tuned.get(strongest)) is not None:
            vs_tuned.append((f, strongest, vs_best, bool(tuned_cut)))
        if by_seed:
            head_text = f"{_diff_text(by_seed)} over {by_seed['n_seeds']} seeds (paired by seed, t-interval)"
        else:
            head_text = f"{_diff_text(d_head)} (seed {seed0} only: paired bootstrap over test users)"
        parts = [f"{pair} vs scratch: {head_text}"]
        if best is not None and best["method"] != pair:
            parts.append(
                f"best on validation ({best['method']}, seed {seed0}) vs scratch: {_diff_text(d_best)}"
            )
            best_by_seed = res.seed_diff(target, f, size, best["method"], "scratch")
            if best_by_seed:
                data[f"{f:g}"]["best_vs_scratch_by_seed"] = best_by_seed
                parts.append(f"{best['method']} vs scratch: {_diff_text(best_by_seed)} over "
                             f"{best_by_seed['n_seeds']} seeds (paired by seed, t-interval)")
        parts += [f"{best['method'] if best else pair} vs tuned {b} (seed {seed0}): {_diff_text(d)}"
                  for b, d in tuned.items() if d is not None]
        cut = sorted(set(decisive_cut) | set(tuned_cut))
        data[f"{f:g}"]["cut_by_time"] = cut
        if cut:
            parts.append(
                f"**not like-for-like: {len(cut)} of the cells behind these comparisons were stopped by the "
                f"time cap, not early stopping** ({', '.join(cut)})"
            )
        lines.append(f"- fraction {f:g}: " + "; ".join(parts) + ".")
    verdict = _verdict(target, helped)
    if cut_fractions:
        verdict += (
            f" At {', '.join(f'{f:g}' for f in cut_fractions)} it is unsettled: cells stopped by the time "
            "cap make that comparison not like-for-like."
        )
    data["verdict"] = verdict
    data["verdict_basis"] = f"{pair} vs scratch, paired by seed where several seeds exist"
    against = _tuned_verdict(target, vs_tuned)
    data["verdict_vs_tuned"] = against
    return [f"**{verdict}**", "", f"**{against}**", "", *lines], data


def _strongest_baseline(res: Results, target: str, fraction: float) -> str | None:
    """The tuned from-scratch baseline with the best validation NDCG@10 at this fraction (never test)."""
    scored = []
    for b in res.spec.baselines:
        row = res.get(target, fraction, "", f"tuned {b}", None)
        if row is not None and row.get("valid_ndcg@10") is not None:
            scored.append((row["valid_ndcg@10"], b))
    return max(scored)[1] if scored else None


def _tuned_verdict(target: str, vs: list[tuple[float, str, dict[str, Any], bool]]) -> str:
    """The second finding: the best fine-tuned model (on validation) against the strongest tuned
    from-scratch recipe (on validation), which is the bar a practitioner compares with; beating the
    same architecture trained from scratch in the fine-tuning loop is the weaker claim."""
    if not vs:
        return f"{target}: no fraction has both a fine-tuned result and a tuned baseline yet."
    words = {1: "better", 0: "not significantly different", -1: "worse"}
    parts = []
    for f, b, d, cut in vs:
        sign = 1 if d["lo"] > 0 else -1 if d["hi"] < 0 else 0
        caveat = "; not like-for-like: stopped by the time cap" if cut else ""
        parts.append(f"{words[sign]} at {f:g} (vs tuned {b}, {d['diff']:+.4f}{caveat})")
    return (
        f"{target}: against the strongest tuned from-scratch recipe (chosen on validation), the best "
        f"fine-tuned model is " + "; ".join(parts) + " (seed 0, paired bootstrap over test users)."
    )


def _cold(res: Results, target: str) -> list[str]:
    lines = []
    for f in res.spec.fractions:
        zs = res.get(target, f, res.spec.key_size, "zero-shot", None)
        pop = res.get(target, f, "", "most-popular", None)
        for mask in ("cold", "rare"):
            d = res.diff(zs, pop, mask)
            lines.append(f"- fraction {f:g}, {mask} test targets: zero-shot vs most-popular {_diff_text(d)}")
    return lines


def _pretrain_table(res: Results) -> list[str]:
    lines = [
        "| target corpus | size | LR search (valid NDCG@10) | chosen LR | edge of grid | stopped by time |",
        "|---|---|---|---|---|---|",
    ]
    for group, c in sorted(res.chosen.items()):
        if not group.startswith("pre-"):
            continue
        row = next(r for r in res.pretrain if r["cell"] == c["cell"])
        stopped = row.get("stopped_by_time")
        lines.append(f"| {row['target']} | {row['size']} | {_search_cells(c)} | {stopped} |")
    return lines


def _finetune_lr_table(res: Results) -> list[str]:
    """Every fine-tuning LR search (seed 0), with a winner at the edge of its grid flagged. One-point
    "searches" (zero-shot, phase-3 seeds and sizes run at the LR chosen at the key size) choose nothing
    and are left out."""
    lines = [
        "| search | LR search (valid NDCG@10) | chosen LR | edge of grid |",
        "|---|---|---|---|",
    ]
    for group, c in sorted(res.chosen.items()):
        if group.startswith("pre-") or len(c["search"]) < 2:
            continue
        lines.append(f"| {group} | {_search_cells(c)} |")
    return lines


def _search_cells(c: dict[str, Any]) -> str:
    """`search | chosen LR | edge` table cells of one LR search (`store.choose_lr`'s answer)."""
    search = ", ".join(
        f"{s['lr']:g}: {_num(s['valid_ndcg@10'])}{CUT_MARK if s.get('cut') else ''}" for s in c["search"]
    )
    return f"{search} | {c['lr']:g} | {'YES: widen the grid' if c['edge'] else 'no'}"


def _plots(res: Results, target: str, out: Path) -> list[Path]:
    def plot_row(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "strategy": label(r),
            "overall": r["test"]["overall"],
            "target_fraction": r["fraction"],
            "pretrained_params": r.get("pretrained_params") if r["kind"] == "finetune" else None,
        }

    mine = [r for r in res.final if r["target"] == target]
    key = [plot_row(r) for r in mine if r.get("size") in ("", res.spec.key_size)]
    sized = [plot_row(r) for r in mine if r["kind"] == "finetune"]
    out.mkdir(parents=True, exist_ok=True)
    return write_plots(key, out, ("fraction",)) + write_plots(sized, out, ("size",))


def write_report(work: Path, results: Path, spec: StudySpec) -> Path:
    """`transfer_v2.md`, `transfer_v2.json`, `results.jsonl` and `<target>/*.png` under `results`."""
    store = Store(work)
    res = Results(store, spec)
    results.mkdir(parents=True, exist_ok=True)
    store.write_jsonl(results / "results.jsonl")
    md = [
        "# Transfer study v2 (issue 20)",
        "",
        f"{len(res.final)} final configurations of {len(store.rows())} finished cells. Test metrics: "
        "full-catalog ranking, history items not masked, the same test users in every row of a target "
        "(all of its users, whatever the fraction). Every LR, epoch and best strategy was chosen "
        "on validation NDCG@10."
        + (f" {len(res.stale)} fine-tuning rows are left out: they were built on a pretrained checkpoint "
           "that is no longer the chosen one, or whose pretraining search is incomplete, and run again."
           if res.stale else ""),
        "",
        "## Finding",
        "",
    ]
    summary: dict[str, Any] = {"format_version": 1, "targets": {}}
    for t in spec.targets:
        lines, data = _curve(res, t)
        md += lines + [""]
        summary["targets"][t] = data
    md += ["## Tables", ""]
    for t in spec.targets:
        md += _target_table(res, t) + [""]
        md += [
            f"Cold start ({t}, zero-shot at size {spec.key_size}; paired over the slice's test users):",
            "",
        ]
        md += _cold(res, t) + [""]
        for p in _plots(res, t, results / t):
            md.append(f"![{t} {p.stem}]({t}/{p.name})")
        md.append("")
    md += ["## Pretraining LR searches", "", *_pretrain_table(res), ""]
    searches = _finetune_lr_table(res)
    cut_note = [CUT_NOTE, ""] if _marks_cut(searches) else []
    md += ["## Fine-tuning LR searches (seed 0)", "", *searches, "", *cut_note]
    summary["choices"] = res.chosen
    with atomic_write(results / "transfer_v2.json") as fh:
        fh.write(numerics.dumps(summary, indent=1) + "\n")
    out = results / "transfer_v2.md"
    with atomic_write(out) as fh:
        fh.write("\n".join(md) + "\n")
    return out
