"""CPU packed training in bf16 against CPU packed fp32 and the H200 runs, by 1,500-step bins.

The packing diagnostic (../h100_2026-12-05_packing_diag) found that packed fp32 follows padded bf16 while
every bf16 packed run on a GPU falls behind late. This asks whether CPU bf16 autocast (no Triton kernel,
no CUDA SDPA, oneDNN matmuls) does the same with the same recipe and seed. Run from the repository root:

    python docs/results/accuracy/cpu_2026-12-05_packing_bf16/compare_cpu_bf16.py
"""

from __future__ import annotations

import gzip
import json

HERE = "docs/results/accuracy/cpu_2026-12-05_packing_bf16"
H200 = "docs/results/accuracy/h200_2026-12-05_packing_control"
RUNS = {
    "CPU packed bf16 s0": f"{HERE}/cpu_bf16_packed_s0.metrics.jsonl.gz",
    "CPU packed fp32 s0": f"{H200}/cpu_packed_s0.metrics.jsonl.gz",
    **{f"H200 padded bf16 s{s}": f"{H200}/padded_s{s}.metrics.jsonl.gz" for s in range(3)},
    **{f"H200 packed bf16 s{s}": f"{H200}/packed_s{s}.metrics.jsonl.gz" for s in range(3)},
}
WIDTH, TOP = 1500, 30000


def read(path: str) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def bins(rows: list[dict]) -> list[str]:
    """Mean loss per bin; a bin the run stopped inside is left out (a few log lines are too noisy)."""
    train = [r for r in rows if "train/loss" in r]
    last = train[-1]["step"]
    out = []
    for lo in range(0, TOP, WIDTH):
        w = [r["train/loss"] for r in train if lo <= r["step"] < lo + WIDTH]
        out.append(f"{sum(w) / len(w):.3f}" if w and last >= lo + WIDTH - 17 else "  -  ")
    return out


def main() -> None:
    runs = {k: read(p) for k, p in RUNS.items()}
    print("mean training loss per 1,500 steps; columns start at step")
    print("run".ljust(20), " ".join(f"{lo:>5}" for lo in range(0, TOP, WIDTH)))
    for label, rows in runs.items():
        print(label.ljust(20), " ".join(bins(rows)))
    print("\nvalidation NDCG@10 of the two CPU runs (every 2,000 steps)")
    for label in ("CPU packed bf16 s0", "CPU packed fp32 s0"):
        va = [(r["step"], round(r["valid/ndcg@10"], 4)) for r in runs[label] if "valid/ndcg@10" in r]
        print(label.ljust(20), va)


if __name__ == "__main__":
    main()
