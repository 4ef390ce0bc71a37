"""tiny (run 3) against xs (this run), both pretrained on the pooled corpus minus Office and fine-tuned on
the same 5% of Office's training users: per strategy, the LR chosen on validation (seed 0's search, as the
study chose it), the 3 seeds' test NDCG@10 at that LR, and xs - tiny with a Welch t-interval (the two
sizes' seeds are separate runs, so they are not paired).

    python docs/results/transfer_v2/cpu_office_xs/compare_sizes.py [FRACTION]   -> compare_sizes.log
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from scalerec.eval.metrics import seed_interval
from scalerec.transfer.study.store import choices
from scalerec.transfer.study.table import paired_by_seed

HERE = Path(__file__).parent
RUNS = {"tiny": HERE.parent / "cpu_office3" / "results.jsonl", "xs": HERE / "results.jsonl"}
STRATEGIES = ("full", "freeze-transformer", "scratch")


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Mean of a - b and its 95% Welch t-interval."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.975, dof) * np.sqrt(va + vb)
    d = float(a.mean() - b.mean())
    return d, d - half, d + half


def seeds_at_choice(
    rows: list[dict], size: str, fraction: float, strategy: str
) -> tuple[dict | None, dict[int, float]]:
    """The LR chosen on validation (None while its search runs) and each seed's test NDCG@10 at it."""
    group = f"ft-office-{size}-f{fraction:g}-{strategy}-lr?-s0"
    choice = choices(rows).get(group)
    if choice is None:
        return None, {}
    return choice, {
        r["seed"]: r["test"]["overall"]["ndcg@10"] for r in rows
        if r["kind"] == "finetune" and r["size"] == size and r["fraction"] == fraction
        and r["method"] == strategy and float(r["lr"]) == choice["lr"]
    }


def main() -> None:
    fraction = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
    rows = {size: [json.loads(line) for line in path.open()] for size, path in RUNS.items()}
    print(f"Office, {fraction:g} of training users; test NDCG@10 overall (all 4,905 test users), unmasked")
    head = f"{'strategy':20s} {'size':5s} {'chosen LR (valid)':26s} {'edge':5s} {'seeds':>5s}"
    print(f"{head}  mean [95% t-interval]")
    tests, found = {}, {}
    for strategy in STRATEGIES:
        for size in RUNS:
            choice, by_seed = seeds_at_choice(rows[size], size, fraction, strategy)
            found[strategy, size] = by_seed if choice is not None else None
            x = tests[strategy, size] = np.array(list(by_seed.values()))
            if choice is None:
                print(f"{strategy:20s} {size:5s} LR search not finished")
                continue
            grid = [p["lr"] for p in choice["search"]]
            best = max(p["valid_ndcg@10"] for p in choice["search"])
            edge = ("-" if len(grid) == 1 else "top" if choice["lr"] == max(grid)
                    else "bottom" if choice["lr"] == min(grid) else "no")
            m, (lo, hi) = float(x.mean()), seed_interval(list(x)) or (float("nan"), float("nan"))
            lr = f"{choice['lr']:<8g} ({best:.4f}) of {len(grid)} LRs"
            print(f"{strategy:20s} {size:5s} {lr}   {edge:6s} {len(x):>4d}  "
                  f"{m:.4f} [{lo:.4f}, {hi:.4f}]  seeds {', '.join(f'{v:.4f}' for v in x)}")
    print("\nxs - tiny (Welch 95% t-interval; separate runs, not paired):")
    for strategy in STRATEGIES:
        if min(len(tests[strategy, size]) for size in RUNS) < 2:
            print(f"  {strategy:20s} fewer than 2 seeds at one size: no interval")
            continue
        d, lo, hi = welch(tests[strategy, "xs"], tests[strategy, "tiny"])
        print(f"  {strategy:20s} {d:+.4f} [{lo:+.4f}, {hi:+.4f}]{'' if lo > 0 or hi < 0 else '  n.s.'}")
    print("\nfine-tuned - scratch, same size, paired by seed (the study's verdict; 95% t-interval):")
    for size in RUNS:
        for strategy in ("full", "freeze-transformer"):
            a, b = found[strategy, size], found["scratch", size]
            if a is None or b is None:
                print(f"  {size:5s} {strategy:20s} an LR search has not finished")
                continue
            d = paired_by_seed(a, b)
            if d is None:
                print(f"  {size:5s} {strategy:20s} fewer than 2 common seeds: no interval")
                continue
            seeds = sorted(set(a) & set(b))
            ns = "" if d["lo"] > 0 or d["hi"] < 0 else "  n.s."
            print(f"  {size:5s} {strategy:20s} {d['diff']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] "
                  f"over seeds {seeds}{ns}")
    print("\nfine-tuned - scratch, same size (Welch):")
    for size in RUNS:
        for strategy in ("full", "freeze-transformer"):
            if min(len(tests[strategy, size]), len(tests["scratch", size])) < 2:
                print(f"  {size:5s} {strategy:20s} fewer than 2 seeds: no interval")
                continue
            d, lo, hi = welch(tests[strategy, size], tests["scratch", size])
            ns = "" if lo > 0 or hi < 0 else "  n.s."
            print(f"  {size:5s} {strategy:20s} {d:+.4f} [{lo:+.4f}, {hi:+.4f}]{ns}")


if __name__ == "__main__":
    main()
