"""Stage 3 of the packing diagnostic: packed vs padded, both bf16 autocast with fp32 loss logits, compiled,
3 seeds each, one H100, same run. Reads the accuracy runs' `"event": "run"` lines (masked test NDCG@10, read
once per run at its best validation step) from the call logs and prints each arm's mean with its 95%
t-interval over seeds, and packed − padded by seed with its t-interval. Run from the repository root:

    python docs/results/accuracy/h100_2026-12-05_packing_diag/stage3_summary.py
"""

from __future__ import annotations

import gzip
import json

import numpy as np
from scipy import stats

HERE = "docs/results/accuracy/h100_2026-12-05_packing_diag"
ARMS = ("packed_f32logits", "padded_short")


def runs(arm: str) -> dict[int, dict]:
    """seed → the run's result line (the last call that printed it wins: calls 2-3 re-print finished runs)."""
    out: dict[int, dict] = {}
    for call in (1, 2, 3):
        with gzip.open(f"{HERE}/stage3_{arm}_call{call}.jsonl.gz", "rt") as f:
            for line in f:
                if line.startswith('{"event": "run"'):
                    r = json.loads(line)
                    out[r["seed"]] = r
    return out


def t_interval(x: np.ndarray) -> tuple[float, float, float]:
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def main() -> None:
    test = {}
    for arm in ARMS:
        r = runs(arm)
        seeds = sorted(r)
        test[arm] = np.array([r[s]["ndcg@10"]["mean"] for s in seeds])
        m, lo, hi = t_interval(test[arm])
        print(f"{arm:17s} seeds {seeds}  test NDCG@10 " + " ".join(f"{v:.4f}" for v in test[arm])
              + f"  mean {m:.4f} [{lo:.4f}, {hi:.4f}]  valid "
              + " ".join(f"{r[s]['valid_ndcg@10']:.4f}" for s in seeds)
              + "  epochs " + " ".join(f"{r[s]['epochs']:.0f}" for s in seeds))
    d = test[ARMS[0]] - test[ARMS[1]]
    m, lo, hi = t_interval(d)
    welch = stats.ttest_ind(test[ARMS[0]], test[ARMS[1]], equal_var=False)
    print(f"packed - padded by seed: {m:+.4f} [{lo:+.4f}, {hi:+.4f}]  (Welch p = {welch.pvalue:.3f})")


if __name__ == "__main__":
    main()
