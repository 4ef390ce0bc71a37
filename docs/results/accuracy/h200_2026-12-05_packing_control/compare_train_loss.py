"""Mean training loss per 1,500 steps: the CPU packed run against the H200 packed and padded runs."""
import gzip
import json
import sys

D = sys.argv[1] if len(sys.argv) > 1 else "docs/results/accuracy/h200_2026-12-05_packing_control"


def read(path: str) -> list[dict]:
    return [json.loads(line) for line in gzip.open(path)]


def bins(rows: list[dict], width: int = 1500, top: int = 27000) -> list[float | None]:
    train = [r for r in rows if "train/loss" in r]
    out: list[float | None] = []
    for lo in range(0, top, width):
        w = [r["train/loss"] for r in train if lo <= r["step"] < lo + width]
        out.append(round(sum(w) / len(w), 3) if w else None)
    return out


cpu = read(f"{D}/cpu_packed_s0.metrics.jsonl.gz")
print("bin start", list(range(0, 27000, 1500)))
print("cpu packed", bins(cpu))
for arm in ["packed", "padded"]:
    for s in range(3):
        print(f"gpu {arm} s{s}", bins(read(f"{D}/{arm}_s{s}.metrics.jsonl.gz")))
valid = [(r["step"], round(r["valid/ndcg@10"], 4), round(r.get("valid/loss", 0), 3))
         for r in cpu if "valid/ndcg@10" in r]
print("cpu valid", valid)
