"""Two continuations of the CPU bf16 packed run from its state at step 24,000: fp32 and bf16.

Same weights, optimizer state, batch stream and generator; only `train.precision` differs. Each metrics
file also holds the first run's lines up to step 24,259 (written before it was stopped), so the last line
logged for a step wins. Mean training loss per 500 steps. Run from the repository root:

    python docs/results/accuracy/cpu_2026-12-05_packing_bf16/branch_compare.py
"""

from __future__ import annotations

import gzip
import json

HERE = "docs/results/accuracy/cpu_2026-12-05_packing_bf16"
RUNS = {"fp32 from 24K": f"{HERE}/branch_fp32_from_24k.metrics.jsonl.gz",
        "bf16 from 24K": f"{HERE}/branch_bf16_from_24k.metrics.jsonl.gz"}


def train_losses(path: str) -> dict[int, float]:
    """step → training loss, the last line logged for the step winning (a resumed run re-logs steps)."""
    with gzip.open(path, "rt") as f:
        rows = [json.loads(line) for line in f]
    return {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}


def main() -> None:
    print("mean training loss per 500 steps after the branch point (lines in the bin)")
    for label, path in RUNS.items():
        loss = train_losses(path)
        cells = []
        for lo in range(24000, 26000, 500):
            w = [v for s, v in loss.items() if lo < s <= lo + 500]
            cells.append(f"{lo}-{lo + 500}: {sum(w) / len(w):.4f} ({len(w)})" if w else f"{lo}-{lo + 500}: -")
        print(label.ljust(14), " | ".join(cells))


if __name__ == "__main__":
    main()
