"""xs against tiny on the *same* fine-tuning LR grid. The size comparison's limit: tiny searched
x{1, 3, 10, 30} (winners at its top) while xs searched x{1 ... 1,000}. Every xs LR point of tiny's grid
ran on seed 0 (the search seed), so restricting xs's seed-0 search to tiny's LRs and choosing on validation
again says which LR xs would have chosen there, and its test figure. Seed 0 only: seeds 1-2 exist only at
the LR each size chose on its own grid, so these are single runs, without an interval.

    PYTHONPATH=src python docs/results/transfer_v2/cpu_office_xs/matched_grid.py   -> matched_grid.log
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
RUNS = {"tiny": HERE.parent / "cpu_office3" / "results.jsonl", "xs": HERE / "results.jsonl"}
STRATEGIES = ("full", "freeze-transformer", "scratch")


def search(rows: list[dict], size: str, fraction: float, strategy: str) -> dict[float, dict]:
    """LR → the seed-0 search row of that LR."""
    return {
        float(r["lr"]): r for r in rows
        if r["kind"] == "finetune" and r["size"] == size and r["fraction"] == fraction
        and r["method"] == strategy and r["seed"] == 0 and r.get("search")
    }


def best(points: dict[float, dict]) -> tuple[float, dict]:
    lr = max(points, key=lambda k: points[k]["valid_ndcg@10"])
    return lr, points[lr]


def main() -> None:
    rows = {size: [json.loads(line) for line in path.open()] for size, path in RUNS.items()}
    print("Office, seed 0; test NDCG@10 overall (all 4,905 test users), unmasked; LR chosen on validation")
    heads = ("tiny (own grid)", "xs on tiny grid", "xs (own grid)")
    print(f"{'fraction':8s} {'strategy':19s} " + " ".join(f"{h:24s}" for h in heads) + " xs-tiny, same grid")
    for fraction in (0.05, 0.2):
        for strategy in STRATEGIES:
            tiny = search(rows["tiny"], "tiny", fraction, strategy)
            xs = search(rows["xs"], "xs", fraction, strategy)
            matched = {lr: r for lr, r in xs.items() if any(abs(lr - t) < 1e-12 for t in tiny)}
            missing = sorted(set(tiny) - set(matched))
            assert not missing, f"xs lacks tiny's LRs {missing} ({fraction}, {strategy})"
            cells = []
            for points in (tiny, matched, xs):
                lr, r = best(points)
                edge = "top" if lr == max(points) else "bottom" if lr == min(points) else "in"
                cells.append((lr, r, edge))
            text = [f"{lr:<7g}{edge:>6s} {r['test']['overall']['ndcg@10']:.4f}" for lr, r, edge in cells]
            diff = cells[1][1]["test"]["overall"]["ndcg@10"] - cells[0][1]["test"]["overall"]["ndcg@10"]
            print(f"{fraction:<8g} {strategy:19s} " + " ".join(f"{t:24s}" for t in text) + f" {diff:+.4f}")


if __name__ == "__main__":
    main()
