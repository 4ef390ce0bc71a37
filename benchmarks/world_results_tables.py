"""Markdown tables of a world sweep's results.parquet: valid/test loss by size, LR, D and seed, the
seed spread at each cell, and the excess over the Bayes floor — what a results README quotes.

Why: the fits read validation loss, so a README must show valid and test side by side (world_v4's
call 1 is where they disagreed), and whether the size effect exceeds the seed spread. pyarrow only
(pandas is not a dependency).

    python benchmarks/world_results_tables.py runs/world_v4/results.parquet
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict


def _rows(path: str) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for r in pq.read_table(path).to_pylist() if r["status"] == "ok"]


def runs_table(rows: list[dict]) -> list[str]:
    out = ["| size | N (non-emb.) | lr | seed | steps | D (targets) | valid loss | test loss | "
           "test - floor | valid ndcg@10 | test ndcg@10 |", "|" + "---|" * 11]
    key = lambda r: (r["n_params_non_embedding"], r["lr"], r["seed"], r["targets_seen"])  # noqa: E731
    for r in sorted(rows, key=key):
        out.append(
            f"| {r['size']} | {r['n_params_non_embedding']:,} | {r['lr']:.3g} | {r['seed']} | {r['steps']} "
            f"| {r['targets_seen'] / 1e6:.1f}M | {r['valid_loss']:.4f} | {r['test_loss']:.4f} "
            f"| {r['test_loss'] - r['bayes_floor']:+.4f} | {r['valid_ndcg@10']:.4f} "
            f"| {r['test_ndcg@10']:.4f} |"
        )
    return out


def seed_table(rows: list[dict]) -> list[str]:
    """Mean and sd over seeds of each (size, lr, D) cell that has more than one seed."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        cells[(r["n_params_non_embedding"], r["size"], r["lr"], r["targets_seen"])].append(r)
    out = ["| size | lr | D | seeds | valid mean | valid sd | test mean | test sd |", "|" + "---|" * 8]
    for (_, size, lr, d), rs in sorted(cells.items()):
        if len(rs) < 2:
            continue
        v, t = [r["valid_loss"] for r in rs], [r["test_loss"] for r in rs]
        out.append(f"| {size} | {lr:.3g} | {d / 1e6:.1f}M | {len(rs)} | {statistics.mean(v):.4f} | "
                   f"{statistics.stdev(v):.4f} | {statistics.mean(t):.4f} | {statistics.stdev(t):.4f} |")
    return out


def best_table(rows: list[dict]) -> list[str]:
    """Per size and D: the lowest test loss over LRs and seeds, and its excess over the floor. This is
    test-selected: a diagnostic of what a size can reach (for a world whose validation is in doubt),
    never a figure to fit or to choose a recipe on."""
    best: dict[tuple, dict] = {}
    for r in rows:
        k = (r["n_params_non_embedding"], r["size"], r["targets_seen"])
        if k not in best or r["test_loss"] < best[k]["test_loss"]:
            best[k] = r
    out = ["| size | D | best test loss (lr, seed) | excess over floor | valid loss of that run |",
           "|" + "---|" * 5]
    for (_, size, d), r in sorted(best.items()):
        out.append(f"| {size} | {d / 1e6:.1f}M | {r['test_loss']:.4f} ({r['lr']:.3g}, {r['seed']}) | "
                   f"{r['test_loss'] - r['bayes_floor']:.4f} | {r['valid_loss']:.4f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parquet")
    rows = _rows(ap.parse_args().parquet)
    print(f"{len(rows)} ok runs; Bayes floor {rows[0]['bayes_floor']:.4f}\n")
    for title, table in (("All runs", runs_table(rows)), ("Seed spread", seed_table(rows)),
                         ("Lowest test loss per size and D (test-selected, diagnostic)", best_table(rows))):
        print(f"### {title}\n\n" + "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
