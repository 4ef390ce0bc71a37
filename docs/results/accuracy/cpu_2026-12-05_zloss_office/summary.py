"""The CPU z-loss check on Office (issue 24 item 1): per run, the mean logit over the catalog, validation
NDCG@10 per 25-epoch window, and the final figures (best validation NDCG@10, test NDCG@10 at that step,
history not masked). Run from the repository root:

    python docs/results/accuracy/cpu_2026-12-05_zloss_office/summary.py
"""

from __future__ import annotations

import gzip
import json
import os

HERE = "docs/results/accuracy/cpu_2026-12-05_zloss_office"
RUNS = ("office_packed_bf16", "office_packed_bf16_z", "office_packed_fp32", "office_padded_bf16",
        "office_packed_bf16_s1", "office_packed_bf16_z_s1")  # _s1: seed 1, added after the first four
EDGES = list(range(0, 175, 25))


def window(rows: list[dict], key: str) -> str:
    cells = []
    for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True):
        vals = [r[key] for r in rows if key in r and lo < r["epoch"] <= hi]
        cells.append(f"{sum(vals) / len(vals):7.4f}" if vals else "    -  ")
    return " ".join(cells)


def main() -> None:
    head = " ".join(f"{lo:>3}-{hi:<3}" for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True))
    rows = {}
    for name in RUNS:
        with gzip.open(f"{HERE}/{name}.metrics.jsonl.gz", "rt") as f:
            rows[name] = [json.loads(line) for line in f]
    for key in ("valid/logit_mean", "valid/ndcg@10"):
        print(f"\n{key}, mean per epoch window\n{'run':22s} {head}")
        for name, r in rows.items():
            print(f"{name:22s} {window(r, key)}")
    print("\nrun                    epochs  best step  best valid NDCG@10  test NDCG@10  test logit_mean"
          "  wall s")
    for name in RUNS:
        path = f"{HERE}/{name}.final.json"
        if not os.path.exists(path):
            print(f"{name:22s} stopped by hand at epoch {rows[name][-1]['epoch']:.0f} (no test read)")
            continue
        with open(path) as f:
            d = json.load(f)
        print(f"{name:22s} {d['epochs']:6.1f} {d['best_step']:10d} {d['valid']['ndcg@10']:19.4f} "
              f"{d['test']['ndcg@10']:13.4f} {d['test']['logit_mean']:16.2f} {d['wall_time_s']:7.0f}")


if __name__ == "__main__":
    main()
