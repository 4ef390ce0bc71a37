"""Four continuations of the CPU bf16 packed run from its state at step 26,000 (same weights, optimizer
state, batch stream and generator): fp32; bf16 with the loss's logits in bf16 (as trained before
2026-12-05); bf16 with fp32 logits (`train.logits_precision=fp32`, the new default); and bf16 with the
same batches laid out padded (`train.packing=unpacked`, ~10x slower here). Mean training loss per 250
steps (lines in the bin); the bf16 runs' loss is the bf16 forward's, which at these weights overstates
the fp32 loss by 0.044 nats with bf16 logits and 0.008 with fp32 logits (the probe logs). Run from the
repository root:

    python docs/results/accuracy/cpu_2026-12-05_packing_bf16/branch26_compare.py
"""

from __future__ import annotations

import gzip
import json

HERE = "docs/results/accuracy/cpu_2026-12-05_packing_bf16"
RUNS = {
    "fp32": f"{HERE}/branch_fp32_from_26k.metrics.jsonl.gz",
    "bf16, bf16 logits": f"{HERE}/branch_bf16_from_26k.metrics.jsonl.gz",
    "bf16, fp32 logits": f"{HERE}/branch_bf16_fp32logits_from_26k.metrics.jsonl.gz",
    "bf16 unpacked": f"{HERE}/branch_unpacked_from_26k.metrics.jsonl.gz",
}


def train_losses(path: str) -> dict[int, float]:
    """step → training loss, the last line logged for the step winning (a resumed run re-logs steps)."""
    with gzip.open(path, "rt") as f:
        rows = [json.loads(line) for line in f]
    return {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}


def main() -> None:
    bins = range(26000, 27500, 250)
    print("mean training loss per 250 steps after step 26,000 (lines in the bin)")
    print("steps from".ljust(18), " ".join(f"{lo:>12d}" for lo in bins))
    for label, path in RUNS.items():
        loss = train_losses(path)
        cells = []
        for lo in bins:
            w = [v for s, v in loss.items() if lo < s <= lo + 250]
            cells.append(f"{sum(w) / len(w):.4f} ({len(w):2d})" if w else "-".rjust(12))
        print(label.ljust(18), " ".join(cells))


if __name__ == "__main__":
    main()
