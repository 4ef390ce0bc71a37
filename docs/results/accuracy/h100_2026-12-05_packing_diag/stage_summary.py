"""Stages 3-5b of the packing diagnostic: each arm's masked test NDCG@10 over seeds, and every arm against a
reference arm. The arms trained the Beauty text model (bf16 autocast with fp32 loss logits unless the arm
says otherwise, compiled) on one H100, 3 seeds each. Reads the accuracy runs' `"event": "run"` lines (test
read once per run at its best validation step) from the calls' logs `stage{S}_{arm}_call{1,2,3}.jsonl.gz`
and prints each arm's mean with its 95% t-interval over seeds, and arm − reference by seed with its
t-interval and Welch's p. An arm is `S:name` (stage S's logs). Run from the repository root:

    python docs/results/accuracy/h100_2026-12-05_packing_diag/stage_summary.py \
        3:packed_f32logits 3:padded_short
    python docs/results/accuracy/h100_2026-12-05_packing_diag/stage_summary.py \
        4:packed_fp32c 4:packed_res32 3:packed_f32logits 3:padded_short
    python docs/results/accuracy/h100_2026-12-05_packing_diag/stage_summary.py \
        5b:packed_z 3:packed_f32logits 3:padded_short 5b:padded_short

The last arm is the reference.
"""

from __future__ import annotations

import gzip
import json
import os
import sys

import numpy as np
from scipy import stats

from scalerec.eval.metrics import seed_interval

HERE = "docs/results/accuracy/h100_2026-12-05_packing_diag"


def runs(stage: str, arm: str) -> dict[int, dict]:
    """seed → the run's result line (the last call that printed it wins: later calls re-print it)."""
    out: dict[int, dict] = {}
    for call in (1, 2, 3):
        path = f"{HERE}/stage{stage}_{arm}_call{call}.jsonl.gz"
        if not os.path.exists(path):
            continue
        with gzip.open(path, "rt") as f:
            for line in f:
                if line.startswith('{"event": "run"'):
                    r = json.loads(line)
                    out[r["seed"]] = r
    return out


def t_interval(x: np.ndarray) -> tuple[float, float, float]:
    lo, hi = seed_interval(list(x)) or (float("nan"), float("nan"))
    return float(x.mean()), lo, hi


def main(arms: list[str]) -> None:
    test = {}
    for spec in arms:
        stage, arm = spec.split(":")
        r = runs(stage, arm)
        seeds = sorted(r)
        test[spec] = np.array([r[s]["ndcg@10"]["mean"] for s in seeds])
        m, lo, hi = t_interval(test[spec])
        print(f"{spec:19s} seeds {seeds}  test NDCG@10 " + " ".join(f"{v:.4f}" for v in test[spec])
              + f"  mean {m:.4f} [{lo:.4f}, {hi:.4f}]  valid "
              + " ".join(f"{r[s]['valid_ndcg@10']:.4f}" for s in seeds)
              + "  epochs " + " ".join(f"{r[s]['epochs']:.0f}" for s in seeds))
    ref = arms[-1]
    for spec in arms[:-1]:
        d = test[spec] - test[ref]
        m, lo, hi = t_interval(d)
        welch = stats.ttest_ind(test[spec], test[ref], equal_var=False)
        print(f"{spec} - {ref} by seed: {m:+.4f} [{lo:+.4f}, {hi:+.4f}]  (Welch p = {welch.pvalue:.3f})")


if __name__ == "__main__":
    main(sys.argv[1:])
