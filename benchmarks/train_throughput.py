"""Training throughput (targets/s) of our recipe vs the paper-faithful recipe, measured in the same run.

For each model size, the baseline is the `paper` recipe (last-position target with every prefix a
sample, per-sample popularity negatives with logQ, Adam, fp32, eager, batch 128) and the
candidate is our default recipe (all positions, shared negatives, AdamW, bf16 autocast on CUDA,
optional torch.compile) at batch 128 and over a batch sweep. Both run through the real training
runtime (`scalerec.train.setup.setup` + `scalerec.train.trainer.train_step`) on a synthetic
dataset written to a temp dir: users with exactly seq_len + 1 items (full windows), a Zipf
catalog and a random token table (title 40, brand 8, categories 16 tokens).

Prints one JSON line per measurement (targets/s, FLOPs per target, TFLOP/s, MFU against the
card's dense bf16 peak on CUDA, peak GPU memory, ratio against the paper mode of the same size)
and a summary line per size.

    python benchmarks/train_throughput.py                      # tiny, CPU
    python benchmarks/train_throughput.py --device cuda --quick   # < 3 min on one H100
    python benchmarks/train_throughput.py --device cuda        # full sweep with torch.compile

Real-data mode (`--dataset DIR --tokens DIR`, a prepared dataset and its token table): for each
size and batch budget B (rows of `--seq-len` slots), the same run measures real targets/s of
  - `real_padded`: the real windows, one per row padded to seq-len (`train.packing=off`);
  - `real_packed`: the real windows packed B rows at a time (`scalerec.train.batches`);
  - `full_window`: synthetic users of exactly seq-len + 3 items (every slot a target) over the same
    catalog and token table, i.e. the same model — the figure the synthetic benchmark reports;
and a summary with packed / full-window and packed / padded. Only real targets are counted.

    python benchmarks/train_throughput.py --dataset data/games --tokens data/games-tokens   # CPU, tiny
    python benchmarks/train_throughput.py --device cuda --sizes paper-1M --seq-len 50 \
        --dataset data/games --tokens data/games-tokens --batches 4096 8192 --skip-paper

Under `torchrun --nproc-per-node G` every rank trains through DDP (NCCL), `--batches` are global
batches (split over the ranks), rank 0 prints, targets/s are global and MFU is against G cards:

    torchrun --nproc-per-node 2 benchmarks/train_throughput.py --device cuda --sizes paper-1M \
        --batches 32768 --skip-paper
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalerec import runlog

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
PAPER_NEGATIVES = {"paper-100K": 300, "paper-1M": 1000}


def write_world(
    root: Path, n_users: int, seq_len: int, n_items: int, vocab: int, seed: int = 0
) -> tuple[Path, Path]:
    """Dataset dir (interactions.parquet, card.json) + token table dir, synthetic."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    data, tokens = root / "data", root / "tokens"
    data.mkdir(parents=True)
    tokens.mkdir(parents=True)
    n = seq_len + 3  # leave-one-out removes 2: training sequences of seq_len + 1 items
    items = (rng.zipf(1.2, n_users * n) % n_items + 1).astype(np.int32)
    users = np.repeat(np.arange(1, n_users + 1, dtype=np.int32), n)
    pq.write_table(
        pa.table(
            {
                "user_id": users,
                "item_id": items,
                "timestamp": np.arange(len(items), dtype=np.int64),
                "rating": pa.nulls(len(items), pa.float32()),
            }
        ),
        data / "interactions.parquet",
    )
    (data / "card.json").write_text(json.dumps({"format_version": 1, "n_users": n_users, "n_items": n_items}))
    arrays = {}
    widths = {"title": 40, "brand": 8, "categories": 16}
    for field, width in widths.items():
        lengths = rng.integers(1, width + 1, n_items + 1).astype(np.int32)
        tok = rng.integers(2, vocab, (n_items + 1, width)).astype(np.int32)
        tok[np.arange(width)[None, :] >= lengths[:, None]] = 0
        tok[0], lengths[0] = 0, 0
        arrays[field], arrays[f"{field}_len"] = tok, lengths
    np.savez(tokens / "item_tokens.npz", **arrays)
    (tokens / "token_table.json").write_text(
        json.dumps({"format_version": 1, "vocab_size": vocab, "fields": widths, "pad_id": 0, "unk_id": 1})
    )
    return data, tokens


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


_RUN_NUMBER = itertools.count()


def measure(
    world: tuple[Path, Path],
    out: Path,
    size: str,
    recipe: str,
    batch: int,
    steps: int,
    args: argparse.Namespace,
    extra: list[str],
    layout: str | None = None,
) -> dict[str, Any]:
    """Targets/s of `steps` optimizer steps (after warmup) through the real training runtime.
    `layout` ("packed" / "padded", real-data mode): batches of exactly `batch` rows, packed or one
    window per row (whole batches only, so every step has the same shapes)."""
    from scalerec.train.config import resolve_run_config
    from scalerec.train.setup import setup

    data, tokens = world
    over = [
        f"data.dataset={data}",
        f"data.tokens={tokens}",
        f"data.max_len={args.seq_len}",
        f"run.out={out}",
        f"run.name={size}-{recipe}-{batch}-{layout or 'window'}-{next(_RUN_NUMBER)}",  # never reuse a dir
        "run.tracking_uri=off",
        "run.progress=false",
        f"run.device={args.device}",
        f"train.batch_size={batch}",
        "train.max_steps=1000000",
        *extra,
    ]
    cfg = resolve_run_config(overrides=over, size=size, recipe=recipe)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rt = setup(cfg, resume=False)
    if layout is not None:
        rt.batches = fixed_rows(rt, batch, layout)
    run = step_runner(rt)
    t0 = time.perf_counter()
    run(args.warmup)
    _sync(device)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    seen = run(steps)
    _sync(device)
    secs = time.perf_counter() - t0
    rate = seen / secs
    fpt = rt.budget.flops_per_target
    row = {
        "size": size,
        "recipe": recipe,
        "batch": batch,
        "targets": cfg.train.targets,
        "negatives": cfg.train.negatives,
        "shared_negatives": cfg.train.shared_negatives,
        "precision": str(rt.dtype or "fp32"),
        "compile": cfg.train.compile,
        "compile_mode": cfg.train.compile_mode,
        "steps": steps,
        "targets_per_s": rate,
        "seconds": secs,
        "warmup_s": warm_s,
        "flops_per_target": fpt,
        "tflops": rate * fpt / 1e12,
        "non_embedding_params": rt.model.param_counts()["non_embedding"],
        "distinct_items": rt.distinct_items,
        "layout": type(rt.batches).__name__,
        "fill": seen / (steps * batch * cfg.data.max_len),  # real targets per slot
        "overrides": [o for o in extra if not o.startswith(("train.negatives", "train.compile="))],
    }
    row["gpus"] = runlog.world_size() if device.type == "cuda" else 0
    peak = peak_flops(device)
    if peak:
        row["mfu"] = rate * fpt / (peak * runlog.world_size())
    if device.type == "cuda":
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def fixed_rows(rt: Any, rows: int, layout: str) -> Any:
    """A batch stream of `rows` global rows: packed windows, or one window per row (drop_last)."""
    from scalerec.train.batches import PackedBatches
    from scalerec.train.padded import TrainBatches

    train, t = rt.split.train, rt.cfg
    where = {"rank": runlog.rank(), "world_size": runlog.world_size(), "device": rt.device}
    if layout == "packed":
        return PackedBatches(train, t.data.max_len, t.run.seed, rows=rows, **where)
    probe = TrainBatches(train, t.data.max_len, rows, t.run.seed)
    return TrainBatches(train, t.data.max_len, rows, t.run.seed, drop_last=probe.n_units >= rows, **where)


def step_runner(rt: Any) -> Any:
    """`run(n)`: n optimizer steps of the real training runtime `rt`; returns the targets trained."""
    from scalerec.train.trainer import train_step

    stream = rt.batches.batches()

    def run(n: int) -> int:
        seen = 0
        for _ in range(n):
            micro = [next(stream) for _ in range(rt.cfg.train.grad_accum)]
            n_t = sum(b.n_targets for b in micro)
            train_step(rt, micro, n_t)
            seen += n_t
        return seen

    return run


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def safe_measure(*a: Any, **k: Any) -> dict[str, Any] | None:
    """`measure`, reporting OOM / errors as a row; frees compiled graphs and cached memory after."""
    try:
        return measure(*a, **k)
    except torch.OutOfMemoryError:
        return {"oom": True}
    except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        import gc

        torch._dynamo.reset()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def bench_size(size: str, world: tuple[Path, Path], out: Path, args: argparse.Namespace) -> None:
    k_paper = PAPER_NEGATIVES.get(size, 1000 if args.device == "cuda" else 100)
    k_ours = args.negatives or (4096 if size not in PAPER_NEGATIVES and args.device == "cuda" else k_paper)
    base_extra = [f"train.negatives={k_paper}"]
    paper = None
    if not args.skip_paper:
        paper = safe_measure(world, out, size, "paper", 128, args.steps, args, base_extra)
        emit({"kind": "paper_mode", **(paper or {})}, size)
    ours_extra = [f"train.negatives={k_ours}", f"train.compile={str(args.compile).lower()}", *args.set]
    rows = []
    for batch in args.batches:
        row = safe_measure(world, out, size, "default", batch, args.steps, args, ours_extra)
        row = {"batch": batch, **row}
        if paper and "targets_per_s" in paper and "targets_per_s" in row:
            row["ratio_vs_paper"] = row["targets_per_s"] / paper["targets_per_s"]
        emit({"kind": "ours", **row}, size)
        if row.get("oom"):
            break
        rows.append(row)
    ok = [r for r in rows if "targets_per_s" in r]
    if ok and paper and "targets_per_s" in paper:
        best = max(ok, key=lambda r: r["targets_per_s"])
        at128 = next((r for r in ok if r["batch"] == 128), None)
        emit(
            {
                "kind": "summary",
                "paper_targets_per_s": paper["targets_per_s"],
                "ours_batch128_targets_per_s": at128 and at128["targets_per_s"],
                "ratio_batch128": at128 and at128["targets_per_s"] / paper["targets_per_s"],
                "best_batch": best["batch"],
                "best_targets_per_s": best["targets_per_s"],
                "ratio_best": best["targets_per_s"] / paper["targets_per_s"],
                "best_mfu": best.get("mfu"),
                "best_peak_mem_gib": best.get("peak_mem_gib"),
            },
            size,
        )


def write_full_windows(root: Path, dataset: Path, n_users: int, seq_len: int, seed: int = 0) -> Path:
    """A dataset dir of `n_users` users with exactly seq_len + 3 items each (full training windows)
    drawn from `dataset`'s item popularity: the real catalog, so the real token table applies."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    items = pq.read_table(dataset / "interactions.parquet", columns=["item_id"]).column(0).to_numpy()
    n_items = int(json.loads((dataset / "card.json").read_text()).get("n_items", items.max()))
    p = np.bincount(items, minlength=n_items + 1).astype(np.float64)
    n = seq_len + 3
    drawn = np.random.default_rng(seed).choice(n_items + 1, n_users * n, p=p / p.sum()).astype(np.int32)
    root.mkdir(parents=True)
    pq.write_table(pa.table({
        "user_id": np.repeat(np.arange(1, n_users + 1, dtype=np.int32), n),
        "item_id": drawn,
        "timestamp": np.arange(len(drawn), dtype=np.int64),
        "rating": pa.nulls(len(drawn), pa.float32()),
    }), root / "interactions.parquet")
    (root / "card.json").write_text(json.dumps({"format_version": 1, "n_users": n_users, "n_items": n_items}))
    return root


def bench_real(size: str, tmp: Path, args: argparse.Namespace) -> None:
    """Real targets/s of packed vs padded real windows vs synthetic full windows, same model and
    batch budget (rows of seq-len slots), one run."""
    n_users = max(256, (args.steps + args.warmup + 2) * max(args.batches))
    full = write_full_windows(tmp / f"full-{size}", args.dataset, n_users, args.seq_len)
    k = args.negatives or PAPER_NEGATIVES.get(size, 1000 if args.device == "cuda" else 100)
    extra = [f"train.negatives={k}", f"train.compile={str(args.compile).lower()}", *args.set]
    for batch in args.batches:
        rows = {}
        for kind, data, layout in (("full_window", full, None), ("real_padded", args.dataset, "padded"),
                                   ("real_packed", args.dataset, "packed")):
            packing = "on" if layout == "packed" else "off"
            over = [*extra, f"train.packing={packing}"]
            row = safe_measure((data, args.tokens), tmp / "runs", size, "default", batch, args.steps, args,
                               over, layout)
            rows[kind] = row = {"batch": batch, **(row or {})}
            emit({"kind": kind, "data": "real" if layout else "synthetic full windows", **row}, size)
        rate = {kind: r.get("targets_per_s") for kind, r in rows.items()}
        if all(rate.values()):
            emit({"kind": "real_summary", "batch": batch, "dataset": str(args.dataset),
                  "full_window_targets_per_s": rate["full_window"],
                  "padded_targets_per_s": rate["real_padded"],
                  "packed_targets_per_s": rate["real_packed"],
                  "packed_vs_full_window": rate["real_packed"] / rate["full_window"],
                  "packed_vs_padded": rate["real_packed"] / rate["real_padded"],
                  "fill_padded": rows["real_padded"]["fill"], "fill_packed": rows["real_packed"]["fill"]},
                 size)


def emit(row: dict[str, Any], size: str) -> None:
    if not runlog.is_main():
        return  # under torchrun, rank 0 speaks for all
    print(json.dumps({"bench": "train_throughput", "config": size, **row}), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="few batches/steps, eager (< 3 min on one H100)")
    p.add_argument("--sizes", nargs="+", help="ladder sizes (default: tiny on CPU; paper-100K paper-1M xl)")
    p.add_argument("--batches", nargs="+", type=int, help="batch sweep of our recipe")
    p.add_argument("--steps", type=int, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile, allocator)")
    p.add_argument("--seq-len", type=int, help="sequence length (default 50 on CUDA, 20 on CPU)")
    p.add_argument("--negatives", type=int, help="negatives of our recipe (default: paper's; 4096 for xl)")
    p.add_argument("--n-items", type=int, help="catalog size")
    p.add_argument("--vocab", type=int, help="token vocabulary (default 30000 on CUDA, 2000 on CPU)")
    p.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile ours"
    )
    p.add_argument("--set", nargs="*", default=[], help="config overrides for our recipe (key=value)")
    p.add_argument("--skip-paper", action="store_true", help="no paper-mode baseline (ratios omitted)")
    p.add_argument("--dataset", type=Path, help="real-data mode: a prepared dataset dir (see module doc)")
    p.add_argument("--tokens", type=Path, help="real-data mode: the dataset's token table dir")
    a = p.parse_args(argv)
    if (a.dataset is None) != (a.tokens is None):
        p.error("--dataset and --tokens go together")
    gpu = a.device == "cuda"
    a.sizes = a.sizes or (["paper-100K", "paper-1M", "xl"] if gpu else ["tiny"])
    a.batches = (
        a.batches or ([128, 2048] if a.quick else [128, 512, 1024, 2048, 4096, 8192])
        if gpu
        else a.batches or [16, 128]
    )
    a.steps = a.steps or (8 if a.quick else 20) if gpu else a.steps or 3
    if not gpu:
        a.warmup = min(a.warmup, 1)
    a.seq_len = a.seq_len or (50 if gpu else 20)
    a.n_items = a.n_items or (200_000 if gpu else 2_000)
    a.vocab = a.vocab or (30_000 if gpu else 2_000)
    a.compile = (gpu and not a.quick) if a.compile is None else a.compile
    if a.quick:
        a.warmup = min(a.warmup, 2)
    return a


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device")
    max_batch = max(args.batches + [128])
    n_users = max(256, (args.steps + args.warmup + 2) * max_batch)
    real = args.dataset is not None
    with tempfile.TemporaryDirectory(prefix="scalerec-bench-") as tmp:
        world = None if real else write_world(Path(tmp), n_users, args.seq_len, args.n_items, args.vocab)
        emit(
            {
                "kind": "setup",
                "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
                "torch": torch.__version__,
                "seq_len": args.seq_len,
                "n_items": None if real else args.n_items,
                "dataset": str(args.dataset) if real else None,
                "users": n_users,
                "batches": args.batches,
                "steps": args.steps,
                "compile": args.compile,
            },
            "-",
        )
        for size in args.sizes:
            if real:
                bench_real(size, Path(tmp), args)
            else:
                bench_size(size, world, Path(tmp) / "runs", args)


if __name__ == "__main__":
    main()
