"""Where a small accuracy run's wall time goes per epoch: the model step vs everything around it.

The accuracy recipes (d 64-128, 2 layers, batch 128 users, full softmax over a 12-18K catalog,
validation every epoch) leave a GPU nearly idle, so host work per step and per epoch can set the
pace. This builds the real runtime of one recipe (`scalerec.train.setup.setup` on a prepared
set, Beauty unless `--dataset` says otherwise, with the config `benchmarks/accuracy.py` trains it with:
`configs/train/<dataset>_<variant>.toml`, else Beauty's, plus its dataset overrides) and times,
each on its own and synchronised:

- per step: the model step (`trainer.train_step`: forward, backward, clip, AdamW), host batch
  production of the packed stream (`PackedBatches`) and of the padded one (`TrainBatches`);
- per epoch: the packing of one epoch (`PackedBatches._plan`), one validation (`evaluate_split`
  over every validation user, split into check_weights / encode+rank / metrics), `_save_state`
  (state.pt with optimizer state and RNG), `save_weights` (a new best).
- with `--compare-eval`: validation and user encoding also on the older full-width path
  (`trim=False`: every history padded to max_len), timed alternately with the length-trimmed one
  in the same process (which goes first alternates), then one `eval_compare` line with both medians,
  their ratio, every sample, which metrics differ between the paths (by how much) and the load
  average before and after.

Prints one JSON line per component with its seconds, its ratio to the model step and its share of
an estimated epoch (steps x (step + batch) + the per-epoch costs), then a summary. With
`--compile` it also counts torch.compile graphs built after warm-up (recompiles); on CUDA it
counts host syncs per step with `torch.cuda.set_sync_debug_mode("warn")`.

    python benchmarks/step_overhead.py --variant sasrec_ce --steps 20               # CPU, ~2 min
    python benchmarks/step_overhead.py --variant hybrid_ce --steps 20 --compile
    python benchmarks/step_overhead.py --device cuda --variant sasrec_ce --compile --steps 200
    python benchmarks/step_overhead.py --device cuda --variant hybrid_ce --compile --steps 200
    python benchmarks/step_overhead.py --variant sasrec_ce --steps 4 --warmup 1 --repeat 4 --compare-eval
    python benchmarks/step_overhead.py --device cuda --variant sasrec_ce --compile --steps 200 \
        --repeat 5 --compare-eval
    # N processes sharing one GPU, their timed steps starting together 90 s from now:
    T=$(( $(date +%s) + 90 )); for i in 1 2 3 4; do python benchmarks/step_overhead.py --device cuda \
        --variant sasrec_ce --compile --steps 400 --steps-only --start-at $T > shared_$i.log & done; wait

Data: `--data DIR` (and `--tokens DIR` for hybrid/text), else `<work>/data/<dataset>` prepared from
../shared/data as `benchmarks/accuracy.py` prepares it (and its token table).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeat: int, warmup: int = 1) -> float:
    """Median seconds of `repeat` synchronised calls of `fn`, after `warmup` untimed ones.

    Why the warm-up: a training run pays first-call costs (kernel selection for each new shape, lazy
    allocations) once, then calls validation every epoch. Without it the median of few repeats is
    mostly that one-off cost: on one H100 (2026-12-06) Sports validation timed 1.25-2.78 s this way,
    while the real loop spent ~0.17 s per epoch on validation, logging and saves together."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return median(out)


def timed_pair(
    fn_a: Callable[[], Any], fn_b: Callable[[], Any], device: torch.device, repeat: int
) -> tuple[list[float], list[float]]:
    """Seconds of each of `repeat` calls of `fn_a` and of `fn_b`, alternating and swapping which
    goes first (a b, b a, a b, ...), so that a change of machine load, or a cost one call leaves
    to the next, falls on both alike."""
    a: list[float] = []
    b: list[float] = []
    for i in range(repeat):
        if i % 2:
            b.append(timed(fn_b, device, 1, warmup=0))
            a.append(timed(fn_a, device, 1, warmup=0))
        else:
            a.append(timed(fn_a, device, 1, warmup=0))
            b.append(timed(fn_b, device, 1, warmup=0))
    return a, b


def accuracy_module():
    """benchmarks/accuracy.py, whose data preparation and per-dataset recipe this benchmark shares."""
    here = str(ROOT / "benchmarks")
    if here not in sys.path:  # called once per use: do not grow sys.path each time
        sys.path.insert(0, here)
    import accuracy

    return accuracy


def data_dirs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The prepared dataset and (text variants) its token table, prepared like accuracy.py."""
    text = args.variant.startswith(("text", "hybrid"))
    data = Path(args.data) if args.data else None
    tokens = Path(args.tokens) if args.tokens else None
    if data is None or (text and tokens is None):
        acc = accuracy_module()
        data = data or acc.prepare_dataset(args.dataset, Path(args.work))
        if text and tokens is None:
            tokens = acc.token_table(args.dataset, data, Path(args.work))
    return data, tokens if text else None


def build_runtime(args: argparse.Namespace, out: Path):
    from scalerec.train.config import resolve_run_config
    from scalerec.train.setup import setup

    data, tokens = data_dirs(args)
    sets = [
        f"data.dataset={data}",
        f"run.out={out}",
        "run.name=bench",
        f"run.device={args.device}",
        "run.progress=false",
        "run.tracking_uri=off",
        f"train.packing={args.packing}",
        f"train.compile={'true' if args.compile else 'false'}",
        f"eval.mask_seen={'true' if args.mask_seen else 'false'}",
    ]
    sets += [f"data.tokens={tokens}"] if tokens else []
    acc = accuracy_module()
    sets += acc.DATASET_OVERRIDES.get(args.dataset, [])
    cfg = resolve_run_config(acc.config_path(args.dataset, args.variant), sets + args.set)
    return setup(cfg, resume=False)


def graphs_built() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"].get("unique_graphs", 0))


def measure_steps(rt, args: argparse.Namespace) -> dict[str, Any]:
    """Model step seconds (batches drawn beforehand), recompiles and host syncs per step."""
    from scalerec.train.trainer import train_step

    stream = rt.batches.batches()

    def step() -> None:
        b = next(stream)
        train_step(rt, [b], b.n_targets)

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step()
    sync(rt.device)
    warm_s = time.perf_counter() - t0
    graphs0 = graphs_built()
    batches = [next(stream) for _ in range(args.steps)]
    late = wait_until(args.start_at)
    syncs = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if rt.device.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        sync(rt.device)
        t0 = time.perf_counter()
        for b in batches:
            train_step(rt, [b], b.n_targets)
        if rt.device.type == "cuda":
            torch.cuda.set_sync_debug_mode(0)
        sync(rt.device)
        seconds = (time.perf_counter() - t0) / args.steps
        syncs = sum("synchroniz" in str(w.message) for w in caught)
    return {
        "step_s": seconds,
        "warmup_s": warm_s,
        "graphs_after_warmup": graphs_built() - graphs0,
        "graphs_total": graphs_built(),
        "host_syncs_per_step": syncs / args.steps,
        **({"start_at": args.start_at, "started_late_s": round(late, 3)} if args.start_at else {}),
        "sync_sites": sorted({str(w.message)[:120] for w in caught if "synchroniz" in str(w.message)}),
    }


def wait_until(start_at: float) -> float:
    """Sleep until the wall-clock time `start_at` (0: do not wait); seconds it was already past, else 0.

    Why: several processes sharing one GPU (as the accuracy jobs and sweeps run) warm up and compile at
    different speeds; a common start makes their timed steps overlap, so each measures the shared card."""
    if not start_at:
        return 0.0
    ahead = start_at - time.time()
    if ahead > 0:
        time.sleep(ahead)
    return max(0.0, -ahead)


def batch_seconds(batches, device: torch.device, n: int) -> float:
    """Seconds per batch drawn from a stream (synchronised: the device gathers count)."""
    stream = batches.batches()
    next(stream)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        next(stream)
    sync(device)
    return (time.perf_counter() - t0) / n


def padded_stream(rt):
    from scalerec.train.padded import TrainBatches

    cfg = rt.cfg
    return TrainBatches(
        rt.split.train,
        cfg.data.max_len,
        cfg.train.batch_size,
        cfg.run.seed,
        cfg.train.targets,
        device=rt.device,
    )


def measure_epoch(rt, args: argparse.Namespace) -> dict[str, float]:
    """Seconds of each per-epoch cost, median of `--repeat`."""
    from scalerec.data.read.sequences import pad_left
    from scalerec.eval.encode import item_vectors, user_vectors
    from scalerec.eval.heldout import evaluate_split, subset
    from scalerec.eval.ranking import full_rank
    from scalerec.train import checkpoint, numerics, trainer
    from scalerec.train.batches import PackedBatches

    e, r, dev = rt.cfg.eval, args.repeat, rt.device
    hist, tgt = subset(rt.split.valid[0], rt.split.valid[1], e.max_users, rt.cfg.run.seed)
    max_len = rt.cfg.data.max_len
    out: dict[str, float] = {}
    if isinstance(rt.batches, PackedBatches):
        epochs = iter(range(10_000, 10_000 + r + 1))  # + the warm-up call's

        def plan() -> None:
            rt.batches._plan(next(epochs))

        out["pack_epoch"] = timed(plan, dev, r)
    out["check_weights"] = timed(lambda: numerics.check_weights(rt.model, 0, ""), dev, r)
    args_eval = (max_len, e.ks, e.batch_size, dev, rt.dtype, e.mask_seen)
    if args.compare_eval:  # the trimmed path's medians come from the alternating comparison
        args.eval_compare = compare_eval(rt, hist, tgt, args_eval, r)
        out["validate"] = args.eval_compare["validate_new_s"]
    else:
        out["validate"] = timed(lambda: evaluate_split(rt.model, hist, tgt, *args_eval), dev, r)
    out["valid.pad_left"] = timed(lambda: pad_left(hist, max_len), dev, r)
    rt.model.eval()
    if args.compare_eval:
        out["valid.user_vectors"] = args.eval_compare["user_vectors_new_s"]
    else:
        out["valid.user_vectors"] = timed(
            lambda: user_vectors(rt.model, hist, max_len, e.batch_size, dev, rt.dtype), dev, r
        )
    out["valid.item_vectors"] = timed(lambda: item_vectors(rt.model, dev, rt.dtype), dev, r)
    users = user_vectors(rt.model, hist, max_len, e.batch_size, dev, rt.dtype)
    items = item_vectors(rt.model, dev, rt.dtype)
    rt.model.train()
    excl = hist if e.mask_seen else None
    out["valid.full_rank"] = timed(lambda: full_rank(users, items, tgt, exclude=excl), dev, r)
    out["save_state"] = timed(lambda: trainer._save_state(rt), dev, r)
    out["save_weights"] = timed(
        lambda: checkpoint.save_weights(rt.dir, rt.model, {**rt.meta, "step": 0}), dev, r
    )
    return out


def compare_eval(rt, hist, tgt, args_eval: tuple, repeat: int) -> dict[str, Any]:
    """Validation and its user encoding on the full-width path (old) and the trimmed one (new)."""
    from scalerec.eval.encode import user_vectors
    from scalerec.eval.heldout import evaluate_split

    dev, load0 = rt.device, os.getloadavg()
    max_len, _, batch, _, dtype, _ = args_eval
    res: dict[str, Any] = {}

    def validate(trim: bool, h=hist, t=tgt) -> None:
        res[f"metrics_{trim}"] = evaluate_split(rt.model, h, t, *args_eval, trim=trim)

    def encode(trim: bool) -> None:
        res[f"users_{trim}"] = user_vectors(rt.model, hist, max_len, batch, dev, dtype, trim)

    few = min(hist.n_users, 256)  # warm-up on a few users: first-call costs stay out of the medians
    for trim in (False, True):
        validate(trim, hist.take(np.arange(few)), tgt[:few])
    old_vs, new_vs = timed_pair(lambda: validate(False), lambda: validate(True), dev, repeat)
    rt.model.eval()
    old_us, new_us = timed_pair(lambda: encode(False), lambda: encode(True), dev, repeat)
    old_v, new_v, old_u, new_u = map(median, (old_vs, new_vs, old_us, new_us))
    u_old, u_new = res["users_False"], res["users_True"]
    rt.model.train()
    lengths = hist.lengths().clip(max=max_len)
    return {
        "users": hist.n_users,
        "mean_len": round(float(lengths.mean()), 3),
        "max_len": max_len,
        "repeat": repeat,
        "validate_old_s": round(old_v, 4),
        "validate_new_s": round(new_v, 4),
        "validate_ratio_old_over_new": round(old_v / new_v, 3),
        "user_vectors_old_s": round(old_u, 4),
        "user_vectors_new_s": round(new_u, 4),
        "user_vectors_ratio_old_over_new": round(old_u / new_u, 3),
        "samples_s": {
            name: [round(x, 3) for x in xs]
            for name, xs in zip(
                ("validate_old", "validate_new", "user_vectors_old", "user_vectors_new"),
                (old_vs, new_vs, old_us, new_us),
                strict=True,
            )
        },
        "same_metrics": res["metrics_False"] == res["metrics_True"],
        # fp32 sums over differently shaped passes may differ in the last bits: name which, by how much
        "metrics_differing": {
            k: abs(v - res["metrics_True"][k])
            for k, v in res["metrics_False"].items()
            if v != res["metrics_True"][k]
        },
        "user_vectors_max_abs_diff": float((u_old - u_new).abs().max()) if len(u_old) else 0.0,
        "load_before": [round(x, 2) for x in load0],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def measure_loop(rt, epochs: int) -> dict[str, Any]:
    """Wall seconds per epoch of the real loop (`trainer._loop`: steps, logging, validation, saves)."""
    import dataclasses

    from scalerec.train import trainer

    spe = rt.budget.steps_per_epoch
    rt.budget = dataclasses.replace(rt.budget, total_steps=rt.counters.step + epochs * spe)
    rt.cfg.eval.patience = 0  # measure every epoch, never stop early
    sync(rt.device)
    t0 = time.perf_counter()
    trainer._loop(rt)
    sync(rt.device)
    wall = time.perf_counter() - t0
    return {
        "loop_epochs": epochs,
        "loop_s_per_epoch": round(wall / epochs, 4),
        "loop_steps_per_s": round(epochs * spe / wall, 2),
    }


def report(
    rt, steps: dict[str, Any], epoch: dict[str, float], loop: dict[str, Any], args: argparse.Namespace
) -> None:
    step_s = steps["step_s"]
    n_steps = len(rt.batches)
    packed = rt.batches.__class__.__name__ == "PackedBatches"
    used = "batch_packed" if packed else "batch_padded"  # the other stream is shown for comparison
    per_step = {"model_step": step_s, "batch_packed": args.batch_packed, "batch_padded": args.batch_padded}
    # a validation also checks weights and saves state; a new best also saves weights
    fixed = {k: v for k, v in epoch.items() if not k.startswith("valid.")}
    epoch_s = n_steps * (step_s + per_step[used]) + sum(fixed.values())
    # state.pt and the best weights are written every `train.save_state_s` seconds (older code: at
    # every validation, read as 0): their cost per epoch is scaled by the share of epochs that write
    every = getattr(rt.cfg.train, "save_state_s", 0.0)
    writes = 1.0 if every == 0 else 0.0 if every is None else min(1.0, epoch_s / every)
    for k in ("save_state", "save_weights"):
        if k in fixed:  # absent with --steps-only
            fixed[k] *= writes
    epoch_s = n_steps * (step_s + per_step[used]) + sum(fixed.values())
    base = {
        "dataset": args.dataset,
        "variant": args.variant,
        "device": str(rt.device),
        "compile": args.compile,
        "mask_seen": args.mask_seen,
        "steps_per_epoch": n_steps,
    }
    for name, s in per_step.items():
        share = round(n_steps * s / epoch_s, 4) if name in ("model_step", used) else None
        print(
            json.dumps(
                {
                    **base,
                    "component": name,
                    "per": "step",
                    "seconds": round(s, 6),
                    "ratio_vs_step": round(s / step_s, 4),
                    "share_of_epoch": share,
                }
            ),
            flush=True,
        )
    for name, s in epoch.items():
        print(
            json.dumps(
                {
                    **base,
                    "component": name,
                    "per": "epoch",
                    "seconds": round(s, 6),
                    "ratio_vs_step": round(s / step_s, 2),
                    "share_of_epoch": round(fixed.get(name, s) / epoch_s, 4),
                    "writes_per_epoch": round(writes, 4) if name in ("save_state", "save_weights") else None,
                }
            ),
            flush=True,
        )
    if getattr(args, "eval_compare", None):
        c = args.eval_compare
        # the epoch estimate above holds the trimmed validation; with the old one instead:
        old_epoch = epoch_s - c["validate_new_s"] + c["validate_old_s"]
        c = {
            **c,
            "validate_share_old": round(c["validate_old_s"] / old_epoch, 4),
            "validate_share_new": round(c["validate_new_s"] / epoch_s, 4),
        }
        print(json.dumps({**base, "component": "eval_compare", **c}), flush=True)
    print(
        json.dumps(
            {
                **base,
                "summary": True,
                "epoch_s_estimate": round(epoch_s, 3),
                "model_steps_share": round(n_steps * step_s / epoch_s, 4),
                "per_epoch_fixed_s": round(sum(fixed.values()), 4),
                **loop,
                **{k: v for k, v in steps.items() if k != "step_s"},
            }
        ),
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="beauty", help="which accuracy-benchmark dataset and recipe")
    p.add_argument("--variant", default="sasrec_ce", help="configs/train/<dataset>_<variant>.toml")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--data", default="", help="the dataset's prepared dir")
    p.add_argument("--tokens", default="", help="its token table dir (text/hybrid variants)")
    p.add_argument("--work", default="runs/step_overhead", help="where data is prepared when not given")
    p.add_argument("--compile", action="store_true", help="train.compile=true (as the accuracy runs)")
    p.add_argument("--packing", default="on", choices=["on", "off", "auto"])
    p.add_argument(
        "--mask-seen", action="store_true", help="eval.mask_seen=true (as accuracy.py --mask-seen)"
    )
    p.add_argument("--steps", type=int, default=20, help="timed model steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    p.add_argument("--repeat", type=int, default=3, help="repeats of each per-epoch component")
    p.add_argument("--loop-epochs", type=int, default=0, help="also time this many epochs of the real loop")
    p.add_argument(
        "--compare-eval",
        action="store_true",
        help="also time validation on the older full-width user encoding, alternating with the trimmed one",
    )
    p.add_argument(
        "--start-at",
        type=float,
        default=0.0,
        help="unix time at which to start the timed steps, after warm-up (processes sharing a GPU)",
    )
    p.add_argument(
        "--steps-only", action="store_true", help="time the model step and batches, not the per-epoch costs"
    )
    p.add_argument("--set", action="append", default=[], help="extra config override")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rt = build_runtime(args, Path(tmp))
        try:
            n = max(args.steps, 20)
            args.batch_packed = batch_seconds(
                rt.batches if args.packing != "off" else _packed(rt), rt.device, n
            )
            args.batch_padded = batch_seconds(padded_stream(rt), rt.device, n)
            steps = measure_steps(rt, args)
            epoch = {} if args.steps_only else measure_epoch(rt, args)
            loop = measure_loop(rt, args.loop_epochs) if args.loop_epochs else {}
            report(rt, steps, epoch, loop, args)
        finally:
            rt.log.close("FINISHED")
            if rt.claim is not None:
                rt.claim.release()


def _packed(rt):
    from scalerec.train.batches import PackedBatches

    cfg = rt.cfg
    return PackedBatches(
        rt.split.train, cfg.data.max_len, cfg.run.seed, units=cfg.train.batch_size, device=rt.device
    )


if __name__ == "__main__":
    main()
