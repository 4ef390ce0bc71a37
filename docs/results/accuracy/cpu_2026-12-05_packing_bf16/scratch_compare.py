"""Three packed CPU runs of the Beauty text model from scratch, same seed, recipe and batches, differing
only in numerics: fp32; bf16 autocast with bf16 loss logits (before 2026-12-05); bf16 autocast with fp32
loss logits (the default since). Mean training loss per 1,500 steps (complete bins only) and validation
NDCG@10 at each evaluation. Run from the repository root:

    python docs/results/accuracy/cpu_2026-12-05_packing_bf16/scratch_compare.py
"""

from __future__ import annotations

import gzip
import json

HERE = "docs/results/accuracy/cpu_2026-12-05_packing_bf16"
RUNS = {
    "fp32": "docs/results/accuracy/h200_2026-12-05_packing_control/cpu_packed_s0.metrics.jsonl.gz",
    "bf16, bf16 logits": f"{HERE}/cpu_bf16_packed_s0.metrics.jsonl.gz",
    "bf16, fp32 logits": f"{HERE}/cpu_bf16_fp32logits_packed_s0.metrics.jsonl.gz",
}
BIN = 1500


def read(path: str) -> tuple[dict[int, float], dict[int, float]]:
    """step → training loss and step → validation NDCG@10, the last line logged for a step winning."""
    loss: dict[int, float] = {}
    valid: dict[int, float] = {}
    with gzip.open(path, "rt") as f:
        for line in f:
            r = json.loads(line)
            if "train/loss" in r:
                loss[r["step"]] = r["train/loss"]
            if "valid/ndcg@10" in r:
                valid[r["step"]] = r["valid/ndcg@10"]
    return loss, valid


def main() -> None:
    data = {label: read(path) for label, path in RUNS.items()}
    last = max(max(loss) for loss, _ in data.values())
    edges = range(0, last, BIN)
    print(f"mean training loss per {BIN} steps (complete bins only)")
    print("steps from".ljust(18), " ".join(f"{lo:>6d}" for lo in edges))
    for label, (loss, _) in data.items():
        end = max(loss)
        cells = []
        for lo in edges:
            w = [v for s, v in loss.items() if lo < s <= lo + BIN]
            cells.append(f"{sum(w) / len(w):6.3f}" if w and lo + BIN <= end else "     -")
        print(label.ljust(18), " ".join(cells))
    print("\nvalidation NDCG@10 by step")
    steps = sorted({s for _, valid in data.values() for s in valid})
    print("step".ljust(18), " ".join(f"{s:>6d}" for s in steps))
    for label, (_, valid) in data.items():
        print(label.ljust(18), " ".join(f"{valid[s]:.4f}" if s in valid else "     -" for s in steps))


if __name__ == "__main__":
    main()
