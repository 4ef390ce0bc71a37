"""What is exact when a CPU training run is repeated or resumed (issue 22 item 8).

Trains the same config three times on one machine: twice uninterrupted (A, B) and once stopped at
half and resumed (C). Reports, per pair, the largest train-loss difference over every step, whether
the validation/test metrics and the final weights are identical, and the largest weight difference.

    PYTHONPATH=src python benchmarks/determinism.py --out /tmp/det [--data DIR --tokens DIR]

Without --data it writes a small learnable world (item i followed by i+1, topic-token titles).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch


def small_world(root: Path, n_items: int = 300, n_users: int = 800, seed: int = 0) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    data, tokens = root / "data", root / "tokens"
    data.mkdir(parents=True, exist_ok=True)
    tokens.mkdir(parents=True, exist_ok=True)
    users, items = [], []
    for u in range(1, n_users + 1):
        start, n = int(rng.integers(1, n_items + 1)), int(rng.integers(4, 30))
        items += [(start + k - 1) % n_items + 1 for k in range(n)]
        users += [u] * n
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(users, pa.int32()),
                "item_id": pa.array(items, pa.int32()),
                "timestamp": pa.array(np.arange(len(items)), pa.int64()),
                "rating": pa.array([None] * len(items), pa.float32()),
            }
        ),
        data / "interactions.parquet",
    )
    (data / "card.json").write_text(json.dumps({"format_version": 1, "n_users": n_users, "n_items": n_items}))
    ids = np.arange(n_items + 1)
    title = np.stack([2 + ids % 40, 2 + (ids // 3) % 40, 42 + ids % 11, np.zeros_like(ids)], 1).astype(
        np.int32
    )
    brand = np.stack([2 + ids % 7, np.zeros_like(ids)], 1).astype(np.int32)
    title[0], brand[0] = 0, 0
    np.savez(
        tokens / "item_tokens.npz",
        title=title,
        title_len=(title > 0).sum(1).astype(np.int32),
        brand=brand,
        brand_len=(brand > 0).sum(1).astype(np.int32),
    )
    (tokens / "token_table.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "vocab_size": 60,
                "fields": {"title": 4, "brand": 2},
                "pad_id": 0,
                "unk_id": 1,
                "dataset": str(data),
                "dataset_hash": "x",
            }
        )
    )
    return data, tokens


def losses(run: Path) -> dict[int, float]:
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "train/loss" in rec:
            out[rec["step"]] = rec["train/loss"]
    return out


def compare(a: Path, b: Path) -> dict:
    la, lb = losses(a), losses(b)
    diffs = [abs(la[s] - lb[s]) for s in la if s in lb]
    fa, fb = (json.loads((r / "final.json").read_text()) for r in (a, b))
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    wdiff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    return {
        "steps_compared": len(diffs),
        "train_loss_max_abs_diff": max(diffs),
        "train_loss_identical_steps": sum(d == 0 for d in diffs),
        "valid_identical": fa["valid"] == fb["valid"],
        "test_identical": fa["test"] == fb["test"],
        "test_ndcg@10": [fa["test"].get("ndcg@10"), fb["test"].get("ndcg@10")],
        "weights_bitwise_identical": all(torch.equal(wa[k], wb[k]) for k in wa),
        "weights_max_abs_diff": wdiff,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--tokens", type=Path)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from scalerec.config import load
    from scalerec.train import train
    from scalerec.train.config import RunConfig, resolve_run_config

    torch.set_num_threads(args.threads)
    data, tokens = (args.data, args.tokens) if args.data else small_world(args.out / "world")

    def cfg(name: str, *extra: str) -> RunConfig:
        base = [
            f"data.dataset={data}",
            f"data.tokens={tokens}",
            "data.max_len=20",
            f"run.out={args.out}",
            f"run.name={name}",
            "run.tracking_uri=off",
            "run.progress=false",
            f"train.max_steps={args.steps}",
            "train.batch_size=64",
            "train.log_every=1",
            "eval.every_steps=20",
            "model.dropout=0.1",
        ]
        return resolve_run_config(overrides=base + list(extra), size="xs")

    runs = args.out
    a = train(cfg("A"), overwrite=True).run_dir
    b = train(cfg("B"), overwrite=True).run_dir
    part = train(cfg("C", f"train.stop_after_steps={args.steps // 2}"), overwrite=True).run_dir
    c = train(load(RunConfig, toml=part / "config.toml"), resume=True).run_dir
    report = {
        "machine": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__}".strip(),
        "threads": args.threads,
        "steps": args.steps,
        "config": "xs, batch 64, max_len 20, loss auto",
        "A_vs_B_uninterrupted": compare(a, b),
        "A_vs_C_resumed_at_half": compare(a, c),
    }
    text = json.dumps(report, indent=2)
    (runs / "determinism.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
