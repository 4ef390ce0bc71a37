"""Validation-only tables of a v2 sweep (written for pooled_v3): what the fit's envelopes hide.

For each encoder, size and training-user fraction: the validation loss and NDCG@10 of the LR chosen per seed
on validation loss (`lr_selected`), as a mean over seeds with its spread, and how many of the cell's runs
reached the sweep's step cap. Why a separate table: `scalerec fit` reports laws and flags, and a flat size
axis or a binding step cap is easier to see in the numbers the laws were fitted on.
Test columns are never read.

    python benchmarks/pooled_v3_tables.py docs/results/pooled_v3/results.parquet \
        > docs/results/pooled_v3/tables.md
    python benchmarks/pooled_v3_tables.py --per-lr docs/results/pooled_v3b/results.parquet \
        > docs/results/pooled_v3b/tables.md
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

SIZE_ORDER = ["tiny", "xs", "s2", "s", "s+"]  # by non-embedding parameters


def _mean_sd(xs: list[float]) -> str:
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


def _searched_seeds(cell: list[dict]) -> set[int]:
    """Seeds of a cell that searched the LR (ran more than one). A seed that ran one LR only (pooled_v3's
    extra seeds ran the grid's centre, fixed before the search) is 'selected' by default; for the ID twin,
    whose optimum moved to the grid's low end, that centre is far from it, so averaging it in would mix a
    tuned and an untuned run."""
    lrs: dict[int, set[float]] = defaultdict(set)
    for r in cell:
        lrs[int(r["seed"])].add(float(r["lr"]))
    return {seed for seed, tried in lrs.items() if len(tried) > 1}


def _searched_winners(cell: list[dict]) -> list[dict]:
    """The LR winners (`lr_selected`) of the seeds that searched the LR."""
    searched = _searched_seeds(cell)
    return [r for r in cell if r["lr_selected"] and int(r["seed"]) in searched]


def _marks(cell: list[dict], winners: list[dict]) -> str:
    """† when the cell's runs do not cover its planned LR grid (`lr_grid`); ‡ when a winner is at its edge."""
    grid = {round(float(x), 9) for r in cell for x in str(r.get("lr_grid") or "").split(",") if x}
    ran = {round(float(r["lr"]), 9) for r in cell}
    marks = "†" if grid and not grid <= ran else ""
    return marks + ("‡" if any(r.get("lr_at_edge") for r in winners) else "")


def _cell(rs: list[dict], winners: list[dict], cap: int) -> str:
    """One fraction's 'valid loss | NDCG@10 | capped' of a size: winners' means, the cell's capped runs."""
    loss = [float(r["valid_loss"]) for r in winners]
    ndcg = statistics.mean(float(r["valid_ndcg@10"]) for r in winners)
    capped = sum(int(r["steps"]) >= cap for r in rs)
    return f"{_mean_sd(loss)}{_marks(rs, winners)} | {ndcg:.4f} | {capped}/{len(rs)}"


def _n_params(cells: dict[tuple, list[dict]], enc: str, size: str) -> int:
    return next(c[0]["n_params_non_embedding"] for k, c in cells.items() if k[:2] == (enc, size))


def _step_caps(rows: list[dict]) -> dict[bool, int]:
    """The step cap of the fitted (False) and held-out (True) runs: the largest `steps` of each group. Why
    apart: held-out runs get a longer budget (the spec's holdout scale), and one shared cap would call every
    fitted run uncapped."""
    groups = {bool(r.get("holdout")) for r in rows}
    return {held: max(int(r["steps"]) for r in rows if bool(r.get("holdout")) == held) for held in groups}


def tables(rows: list[dict]) -> str:
    ok = [r for r in rows if r["status"] == "ok"]
    rows = [r for r in ok if not r.get("holdout")]
    held_out = [r for r in ok if r.get("holdout")]
    caps = _step_caps(ok)
    cap, held_cap = caps[False], caps.get(True, 0)
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        cells[(r["encoder"], r["size"], r["train_fraction"])].append(r)
    held_cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in held_out:
        held_cells[(r["encoder"], r["size"], r["train_fraction"])].append(r)
    # a seed that did not search ran exactly one run
    n_unsearched = sum(len({int(r["seed"]) for r in c} - _searched_seeds(c)) for c in cells.values())
    fractions = sorted({k[2] for k in cells})
    sizes = [s for s in SIZE_ORDER if any(k[1] == s for k in cells)] + sorted(
        {k[1] for k in cells} - set(SIZE_ORDER)
    )
    out = [
        f"{len(rows)} ok runs; step cap {cap} (the largest `steps` in the table). Validation only: "
        "each seed's LR is chosen on validation loss (`lr_selected`), and its loss and NDCG@10 are averaged "
        "over the seeds that searched the LR (± = seed sd; a seed that ran the grid's centre LR only is left "
        f"out: {n_unsearched} such runs). `capped` = runs of the cell, over every LR and seed, that reached "
        "the cap. † = the cell has not run every LR of its grid yet (a sweep under way): its LR choice is "
        "provisional; ‡ = a seed's chosen LR is the lowest or highest of the grid (`lr_at_edge`)."
        + (
            f" Held-out sizes (never fitted, their own {held_cap:,}-step cap) are listed below the fitted "
            "ones and left out of the best and the spread."
            if held_out
            else ""
        ),
        "",
    ]
    for enc in sorted({k[0] for k in cells}, reverse=True):
        out += [f"### {enc} encoder", ""]
        head = "| size | N (non-emb.) | " + " | ".join(
            f"f{f:g}: valid loss | NDCG@10 | capped" for f in fractions
        )
        out += [head + " |", "|---|---:|" + "---:|---:|---:|" * len(fractions)]
        best: dict[float, tuple[float, str]] = {}
        size_means: dict[float, list[float]] = defaultdict(list)
        for s in sizes:
            line = []
            for f in fractions:
                rs = cells.get((enc, s, f), [])
                if not rs:
                    line.append("– | – | –")
                    continue
                sel = _searched_winners(rs)
                line.append(_cell(rs, sel, cap))
                m = statistics.mean(float(r["valid_loss"]) for r in sel)
                size_means[f].append(m)
                if f not in best or m < best[f][0]:
                    best[f] = (m, s)
            out.append(f"| {s} | {_n_params(cells, enc, s):,} | " + " | ".join(line) + " |")
        for s in sorted({k[1] for k in held_cells if k[0] == enc}):
            line = []
            for f in fractions:
                rs = held_cells.get((enc, s, f), [])
                # a held-out size that ran one LR per seed has no search: its runs are its winners
                sel = _searched_winners(rs) or [r for r in rs if r["lr_selected"]] or rs
                line.append(_cell(rs, sel, held_cap) if rs else "– | – | –")
            out.append(f"| {s} (held out) | {_n_params(held_cells, enc, s):,} | " + " | ".join(line) + " |")
        # D of a fraction from any encoder's rows: a sweep under way may not have reached this encoder's f yet
        d_by_f = {f: next(c[0]["unique_targets"] for k, c in cells.items() if k[2] == f) for f in fractions}
        reached = [f for f in fractions if f in best]
        out += [
            "",
            "Lowest mean validation loss by fraction: "
            + "; ".join(
                f"f{f:g} (D = {d_by_f[f]:,} unique targets): {best[f][1]} {best[f][0]:.3f}" for f in reached
            ),
            "",
        ]
        spread = [f"f{f:g} {max(size_means[f]) - min(size_means[f]):.3f}" for f in reached]
        out += ["Spread of the size means (max − min, nats): " + "; ".join(spread), ""]
    return "\n".join(out + _ndcg_selected(cells, fractions, sizes))


def _ndcg_selected(cells: dict[tuple, list[dict]], fractions: list[float], sizes: list[str]) -> list[str]:
    """The same question with the LR chosen on validation NDCG@10 instead of loss: per searched seed the
    best `best_valid_ndcg@10` (the checkpoint early stopping kept) over its LRs, averaged over seeds. Why:
    a size effect that only one selection metric shows is not one to report."""
    out = [
        "### LR chosen on validation NDCG@10 instead (best checkpoint per run; mean ± sd over the searched "
        "seeds)",
        "",
        "| encoder | fraction | " + " | ".join(sizes) + " | best |",
        "|---|---|" + "---:|" * len(sizes) + "---|",
    ]
    for enc in sorted({k[0] for k in cells}, reverse=True):
        for f in fractions:
            means: dict[str, float] = {}
            line = []
            for s in sizes:
                cell = cells.get((enc, s, f), [])
                searched = _searched_seeds(cell)
                by_seed: dict[int, list[float]] = defaultdict(list)
                for r in cell:
                    if int(r["seed"]) in searched:
                        by_seed[int(r["seed"])].append(float(r["best_valid_ndcg@10"]))
                best = [max(v) for v in by_seed.values()]
                if not best:
                    line.append("–")
                    continue
                means[s] = statistics.mean(best)
                sd = f" ± {statistics.stdev(best):.4f}" if len(best) > 1 else ""
                line.append(f"{means[s]:.4f}{sd}")
            top = max(means, key=lambda k: means[k]) if means else "–"
            out.append(f"| {enc} | f{f:g} | " + " | ".join(line) + f" | {top} |")
    return out + [""]


def per_lr(rows: list[dict]) -> str:
    """Every LR a cell ran, with its mean end-of-run validation loss: the curve each `lr_selected` is the
    minimum of. Why: a winner by 0.001 nats over its neighbour, or an optimum at the grid's end, reads
    differently from a clear interior minimum, and the summary table shows only the minimum."""
    rows = [r for r in rows if r["status"] == "ok"]
    caps = _step_caps(rows)
    cap_text = " for fitted sizes, ".join(f"{caps[h]:,}" for h in sorted(caps)) + (
        " for held-out ones" if len(caps) > 1 else "")
    cells: dict[tuple, dict[float, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        key = (r["encoder"], float(r["train_fraction"]), r["size"], bool(r.get("holdout")))
        cells[key][round(float(r["lr"]), 9)].append(r)
    order = {s: i for i, s in enumerate(SIZE_ORDER + ["m"])}
    out = [
        "Per LR: mean end-of-run validation loss over the seeds that ran it (n = seeds; c = runs that "
        f"reached their step cap: {cap_text}; lowest of the row in bold). Held-out sizes (never fitted) are "
        "marked.",
        "",
        "| encoder | fraction | size | LR: mean valid loss (n, c) |",
        "|---|---|---|---|",
    ]
    for key in sorted(cells, key=lambda k: (k[0] != "text", k[1], order.get(k[2], 99))):
        enc, f, size, held = key
        means = {lr: statistics.mean(float(r["valid_loss"]) for r in rs) for lr, rs in cells[key].items()}
        low = min(means, key=lambda k: means[k])
        parts = []
        for lr in sorted(means):
            rs = cells[key][lr]
            c = sum(int(r["steps"]) >= caps[held] for r in rs)
            txt = f"{lr:.4g}: {means[lr]:.3f} ({len(rs)}, {c})"
            parts.append(f"**{txt}**" if lr == low and len(means) > 1 else txt)
        out.append(f"| {enc} | f{f:g} | {size}{' (held out)' if held else ''} | " + "; ".join(parts) + " |")
    return "\n".join(out + [""])


def report(rows: list[dict], with_per_lr: bool = False) -> str:
    """The whole tables.md: the summary tables, then (`--per-lr`) every LR each cell ran."""
    out = tables(rows)
    if with_per_lr:
        out += "\n### Every LR run so far (validation loss)\n\n" + per_lr(rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="a sweep's results.parquet")
    ap.add_argument("--per-lr", action="store_true", help="also list every LR each cell ran")
    args = ap.parse_args()
    print(report(pq.read_table(args.results).to_pylist(), args.per_lr))


if __name__ == "__main__":
    main()
