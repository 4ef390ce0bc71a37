"""Sampled vs full softmax on real data: does the pooled_v2 training loss move the exact validation CE?

configs/sweeps/pooled_v2.toml trains with `loss = "sampled"` (2,048 popularity negatives shared by
the batch, logQ correction) and fits its scaling laws to `valid_loss`, the exact cross-entropy over
the whole catalog. On a synthetic world (docs/results/world_v4_plan) sampled training left that exact
CE far above full-softmax training. This script measures the same comparison on a real dataset with
the real trainer (`scalerec train`, one subprocess per run): equal optimizer steps, equal batch, same
seed, same size and LR, only the loss differs. Variants:

  full      train.loss=full (exact softmax over every item)
  sampled   the pooled_v2 loss: popularity negatives + logQ, negatives scaled to the catalog
            (2,048 of 63,975 items there, i.e. the same fraction of this dataset's catalog)
  uniform   the same number of negatives drawn uniformly (+ logQ, a constant shift then)

The schedule is pooled_v2's independent run of N steps: wsd, warmup 10, last 20% decayed to 0.
It prints one JSON line per run (valid exact CE, valid NDCG@10, last training loss, wall time) and,
per encoder, one ratio line (variant / full of valid CE and of valid NDCG@10) from this invocation's
runs only. Datasets are prepared as benchmarks/accuracy.py does (resumable under --work).

    python benchmarks/softmax_check.py --dataset beauty --size tiny --steps 100 \
        --encoders id,text --variants full,sampled,uniform --work /tmp/softmax_check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("full", "sampled", "uniform")
# pooled_v2: 2,048 popularity negatives over the pooled corpus's 63,975 items
REF_NEGATIVES, REF_CATALOG = 2048, 63975


def scaled_negatives(n_items: int, ref_negatives: int = REF_NEGATIVES, ref_catalog: int = REF_CATALOG) -> int:
    """Negatives that are the same fraction of `n_items` as pooled_v2's of its catalog (>= 1, < catalog)."""
    if n_items < 2:
        raise ValueError(f"catalog of {n_items} items: nothing to sample negatives from")
    return max(1, min(n_items - 1, round(ref_negatives * n_items / ref_catalog)))


def variant_overrides(variant: str, negatives: int) -> list[str]:
    """`--set` overrides that select the training loss of one variant (nothing else differs)."""
    if variant == "full":
        return ["train.loss=full"]
    if variant in ("sampled", "uniform"):
        sampler = "popularity" if variant == "sampled" else "uniform"
        return [
            "train.loss=sampled",
            f"train.negatives={negatives}",
            f"train.sampler={sampler}",
            "train.logq=true",
            "train.shared_negatives=true",
        ]
    raise ValueError(f"variant {variant!r} is not one of {', '.join(VARIANTS)}")


def schedule_overrides(
    steps: int, batch: int, lr: float, decay_frac: float = 0.2, warmup: int = 10
) -> list[str]:
    """pooled_v2's independent run of `steps` steps: wsd, fixed warmup, last `decay_frac` decayed to 0."""
    if steps <= warmup + 1:
        raise ValueError(f"steps={steps} leaves no stable phase after {warmup} warmup steps")
    return [
        f"train.max_steps={steps}",
        f"train.batch_size={batch}",
        f"train.lr={lr}",
        "train.schedule=wsd",
        f"train.warmup_steps={warmup}",
        f"train.decay_steps={max(1, round(decay_frac * steps))}",
        "train.min_lr_ratio=0.0",
        "eval.every_steps=1000000",  # validate once, at the end (the point a sweep run's D describes)
        "eval.patience=0",
    ]


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per encoder, each non-full variant over the full-softmax run: valid CE and valid NDCG@10."""
    out = []
    for enc in dict.fromkeys(r["encoder"] for r in rows):
        full = [r for r in rows if r["encoder"] == enc and r["variant"] == "full"]
        if not full:
            continue
        f = full[0]
        f_ndcg = f["valid_ndcg10"]
        for r in rows:
            if r["encoder"] != enc or r["variant"] == "full":
                continue
            out.append(
                {
                    "event": "ratio",
                    "encoder": enc,
                    "variant": r["variant"],
                    "over": "full",
                    "valid_ce_ratio": r["valid_ce"] / f["valid_ce"],
                    "valid_ce_diff_nats": r["valid_ce"] - f["valid_ce"],
                    "valid_ndcg10_ratio": r["valid_ndcg10"] / f_ndcg if f_ndcg else None,
                }
            )
    return out


def last_train_loss(run_dir: Path) -> float | None:
    """The last logged training loss (the sampled estimate for sampled runs, exact CE for full)."""
    last = None
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if "train/loss" in rec:
            last = rec["train/loss"]
    return last


def run_one(
    args: argparse.Namespace, data: Path, tokens: Path | None, encoder: str, variant: str, negatives: int
) -> dict[str, Any]:
    """Train one (encoder, variant) with the real CLI and read its final.json."""
    name = f"{args.dataset}_{args.size}_{encoder}_{variant}_n{args.steps}_s{args.seed}"
    sets = [
        *schedule_overrides(args.steps, args.batch, args.lr),
        *variant_overrides(variant, negatives),
        f"run.seed={args.seed}",
        "run.progress=false",
        *([f"eval.max_users={args.eval_max_users}"] if args.eval_max_users else []),
        *args.set,
    ]
    cmd = [
        sys.executable,
        "-m",
        "scalerec",
        "train",
        "--data",
        str(data),
        "--size",
        args.size,
        "--encoder",
        encoder,
        "--out",
        str(args.work / "runs"),
        "--name",
        name,
        "--overwrite",
        "--tracking-uri",
        "off",
        "--device",
        args.device,
    ]
    if encoder != "id":
        cmd += ["--tokens", str(tokens)]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.time()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"run {name} failed (exit {proc.returncode})")
    final = json.loads((args.work / "runs" / name / "final.json").read_text())
    return {
        "event": "run",
        "dataset": args.dataset,
        "size": args.size,
        "encoder": encoder,
        "variant": variant,
        "negatives": None if variant == "full" else negatives,
        "steps": final["steps"],
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "targets_seen": final["targets_seen"],
        "epochs": round(final["epochs"], 3),
        "valid_ce": final["valid"]["loss"],
        "valid_ndcg10": final["valid"]["ndcg@10"],
        "last_train_loss": last_train_loss(args.work / "runs" / name),
        "wall_s": round(time.time() - t0, 1),
        "device": final.get("device"),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="beauty", help="a dataset of benchmarks/accuracy.py")
    p.add_argument("--size", default="tiny")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=256, help="pooled_v2: 256")
    p.add_argument("--lr", type=float, default=3e-3, help="pooled_v2's LR for tiny and xs")
    p.add_argument("--encoders", default="id,text")
    p.add_argument("--variants", default="full,sampled")
    p.add_argument("--negatives", type=int, default=None, help="default: pooled_v2's fraction of the catalog")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-max-users", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--work", type=Path, default=Path("runs/softmax_check"))
    p.add_argument("--set", action="append", default=[], help="extra train override for every run")
    args = p.parse_args(argv)
    args.encoders = [e for e in args.encoders.split(",") if e]
    args.variants = [v for v in args.variants.split(",") if v]
    for v in args.variants:
        variant_overrides(v, 1)  # reject an unknown variant before any training
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import accuracy  # dataset sources and preparation shared with the accuracy benchmark

    data = accuracy.prepare_dataset(args.dataset, args.work)
    text = any(e != "id" for e in args.encoders)
    tokens = accuracy.token_table(args.dataset, data, args.work) if text else None
    n_items = json.loads((data / "card.json").read_text())["n_items"]
    negatives = args.negatives or scaled_negatives(n_items)
    print(
        json.dumps(
            {
                "event": "setup",
                "dataset": args.dataset,
                "items": n_items,
                "negatives": negatives,
                "ref": f"{REF_NEGATIVES}/{REF_CATALOG}",
            }
        ),
        flush=True,
    )
    rows = []
    for enc in args.encoders:
        for var in args.variants:
            rows.append(run_one(args, data, tokens, enc, var, negatives))
            print(json.dumps(rows[-1]), flush=True)
    for r in ratios(rows):
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
