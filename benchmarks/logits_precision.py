"""Cost of fp32 logits (`train.logits_precision=fp32`, the default) against bf16 logits ("autocast").

Under bf16 autocast the loss's `hidden @ items.T` (full softmax: the whole catalog; sampled: the shared
negatives) ran in bf16 until 2026-12-05. A trained model's logits carry a large common offset that bf16
rounds the item differences into, which stalled training (BENCHMARKS.md, packing diagnosis), so the
matmul now runs in fp32 (TF32 tensor cores on CUDA, as `scalerec.device` enables them). This prints
what that costs per training step, through the real runtime (`scalerec.train.setup` + `train_step`,
as `train_throughput.py`), the two settings alternated A B A B … in one process so drift hits both.

Configs: the Beauty-sized catalogue (12K items, full softmax, text model), a 100K-item full softmax,
and the throughput flagship (paper-1M, batch 8,192, 1,000 shared negatives). One JSON line per
measurement and one `summary` line per config: fp32 / autocast targets/s (median over rounds).

    python benchmarks/logits_precision.py                          # CPU smoke (tiny models, bf16 autocast)
    python benchmarks/logits_precision.py --device cuda --compile  # ~4 min on one H100
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import safe_measure, write_world  # noqa: E402

# the Beauty text recipe's model (configs/train/beauty_text_ce.toml) on the tiny size's skeleton
BEAUTY_MODEL = ["model.d_model=64", "model.n_heads=1", "model.d_ffn=256", "model.token_dim=64",
                "model.dropout=0.5"]
# (name, size, loss, n_items, batch rows, negatives, overrides)
CUDA_CONFIGS = [
    ("beauty_like_full_12k", "tiny", "full", 12_101, 128, 0, BEAUTY_MODEL),
    ("full_100k", "paper-100K", "full", 100_000, 128, 0, []),
    ("paper1m_sampled_8192", "paper-1M", "sampled", 100_000, 8192, 1000, []),
]
CPU_CONFIGS = [("beauty_like_full_2k", "tiny", "full", 2_000, 32, 0, BEAUTY_MODEL),
               ("tiny_sampled", "tiny", "sampled", 2_000, 32, 100, [])]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--compile", action="store_true", help="train.compile=true (the product path)")
    p.add_argument("--rounds", type=int, default=2, help="A/B rounds per config")
    p.add_argument("--steps", type=int, help="timed steps per measurement (default 30 CUDA, 5 CPU)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--only", nargs="*", help="config names to run")
    args = p.parse_args(argv)
    cuda = args.device == "cuda"
    args.steps = args.steps or (30 if cuda else 5)
    args.seq_len, args.set = (50 if cuda else 20), []
    configs = CUDA_CONFIGS if cuda else CPU_CONFIGS
    if args.only:
        configs = [c for c in configs if c[0] in args.only]
    with tempfile.TemporaryDirectory() as tmp:
        for name, size, loss, n_items, batch, k, model in configs:
            n_users = max(512, (args.steps + args.warmup + 2) * batch)
            world = write_world(Path(tmp) / name, n_users, args.seq_len, n_items, 30000 if cuda else 2000)
            extra = [f"train.loss={loss}", f"train.compile={str(args.compile).lower()}", "train.packing=off",
                     "train.precision=bf16", *model]
            if k:
                extra.append(f"train.negatives={k}")
            rates: dict[str, list[float]] = {"autocast": [], "fp32": []}
            for _ in range(args.rounds):
                for mode in ("autocast", "fp32"):
                    row: dict[str, Any] = safe_measure(
                        world, Path(tmp) / "runs", size, "default", batch, args.steps, args,
                        [*extra, f"train.logits_precision={mode}"]) or {}
                    print(json.dumps({"bench": "logits_precision", "config": name, "logits": mode,
                                      "n_items": n_items, "loss": loss, **row}), flush=True)
                    if "targets_per_s" in row:
                        rates[mode].append(row["targets_per_s"])
            if rates["autocast"] and rates["fp32"]:
                a, f = statistics.median(rates["autocast"]), statistics.median(rates["fp32"])
                print(json.dumps({"bench": "logits_precision", "config": name, "summary": True,
                                  "autocast_targets_per_s": a, "fp32_targets_per_s": f,
                                  "fp32_over_autocast": f / a}), flush=True)


if __name__ == "__main__":
    main()
