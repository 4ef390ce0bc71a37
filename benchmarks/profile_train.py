"""Where a training step's GPU time goes: torch.profiler over real `train_step`s of one config.

Builds the same synthetic world and runtime as `train_throughput.py` (full windows, Zipf catalog,
random token table), runs `--warmup` steps (compilation, allocator), then profiles `--steps` steps
and prints the kernels that take the most device time, grouped into coarse buckets (matmul,
attention, item encoder gathers/scatters, softmax/loss, optimizer, elementwise, copies) so the
bottleneck of a config is one look away. Also prints targets/s and MFU of the profiled steps
(profiling adds little overhead on CUDA; compare with `train_throughput.py` for the clean number).

    python benchmarks/profile_train.py --device cuda --size paper-1M --batch 8192 --compile
    python benchmarks/profile_train.py --size tiny --batch 64 --steps 2      # CPU smoke
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.autograd import DeviceType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import PAPER_NEGATIVES, peak_flops, step_runner, write_world  # noqa: E402

BUCKETS = [
    ("attention", r"flash|fmha|attention|sdpa|efficient_attention|^_(fwd|bwd)_kernel"),
    ("gelu (FFN activation)", r"gelu"),
    ("embedding_bag/gather", r"embedding_bag|EmbeddingBag|index_select|gather|indexSelect|take"),
    ("scatter/index_add (embedding backward)", r"embedding_backward|embedding_dense|index_add|scatter|"
                                                r"sort|radix|segment|compute_grad_weight|sum_and_scatter|"
                                                r"krn_partial|renorm|unique"),
    ("matmul", r"gemm|cutlass|sm90|nvjet|cublas|matmul|mm_|wgmma|xmma|ampere|sm80|"
               r"aten::(mm|addmm|bmm|baddbmm)$"),
    ("softmax/loss", r"softmax|log_softmax|nll|cross_entropy|logsumexp"),
    ("optimizer", r"adam|multi_tensor|foreach|fused_adam"),
    ("layernorm", r"layer_norm|layernorm|LayerNorm"),
    ("copy/cast", r"copy|cast|convert|to_copy|memcpy|memset|fill"),
    ("triton fused", r"triton"),
]


def bucket(name: str) -> str:
    for label, pattern in BUCKETS:
        if re.search(pattern, name, re.IGNORECASE):
            return label
    return "other elementwise"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--size", default="tiny")
    p.add_argument("--recipe", default="default")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seq-len", type=int, default=50)
    p.add_argument("--negatives", type=int)
    p.add_argument("--n-items", type=int, default=200_000)
    p.add_argument("--vocab", type=int, default=30_000)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--set", nargs="*", default=[], help="extra config overrides key=value")
    p.add_argument("--trace", help="write a chrome trace here")
    a = p.parse_args()

    from scalerec.train.config import resolve_run_config
    from scalerec.train.setup import setup

    device = torch.device(a.device)
    k = a.negatives or PAPER_NEGATIVES.get(a.size, 4096 if a.device == "cuda" else 100)
    with tempfile.TemporaryDirectory(prefix="scalerec-prof-") as tmp:
        n_users = (a.warmup + a.steps + 2) * a.batch
        data, tokens = write_world(Path(tmp), n_users, a.seq_len, a.n_items, vocab=a.vocab)
        cfg = resolve_run_config(
            overrides=[
                f"data.dataset={data}", f"data.tokens={tokens}", f"data.max_len={a.seq_len}",
                f"run.out={tmp}/runs", "run.tracking_uri=off", "run.progress=false",
                f"run.device={a.device}", f"train.batch_size={a.batch}", "train.max_steps=1000000",
                f"train.negatives={k}", f"train.compile={str(a.compile).lower()}", *a.set,
            ],
            size=a.size,
            recipe=a.recipe,
        )
        rt = setup(cfg, resume=False)
        steps = step_runner(rt)
        steps(a.warmup)
        if device.type == "cuda":
            torch.cuda.synchronize()
        acts = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            acts.append(torch.profiler.ProfilerActivity.CUDA)
        t0 = time.perf_counter()
        with torch.profiler.profile(activities=acts) as prof:
            seen = steps(a.steps)
            if device.type == "cuda":
                torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        if a.trace:
            prof.export_chrome_trace(a.trace)

    use_cuda = device.type == "cuda"
    # CUDA: kernels only (aten ops also carry their kernels' time as "self device" time: skip them)
    if use_cuda:
        # Triton launches also leave a CPU-side range of the same name holding the kernel's time:
        # keep events that ran on the device, so no kernel is counted twice
        launched = [e for e in prof.key_averages()
                    if e.self_device_time_total > 0 and not e.key.startswith("aten::")]
        events = [e for e in launched if e.device_type != DeviceType.CPU] or launched
    else:
        events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    timing = (lambda e: e.self_device_time_total) if use_cuda else (lambda e: e.self_cpu_time_total)
    total = sum(timing(e) for e in events) or 1
    buckets: dict[str, float] = defaultdict(float)
    for e in events:
        buckets[bucket(e.key)] += timing(e)
    fpt = rt.budget.flops_per_target
    rate = seen / secs
    peak = peak_flops(device)
    print(json.dumps({
        "bench": "profile_train", "size": a.size, "batch": a.batch, "compile": a.compile,
        "device": torch.cuda.get_device_name() if use_cuda else "cpu",
        "targets_per_s": round(rate), "mfu": peak and round(rate * fpt / peak, 4),
        "step_ms": round(secs / a.steps * 1e3, 2),
        "kernel_ms_per_step": round(total / 1e3 / a.steps, 2),
        "buckets_pct": {k: round(100 * v / total, 1) for k, v in sorted(buckets.items(), key=lambda x: -x[1])
                        },
    }), flush=True)
    for e in sorted(events, key=timing, reverse=True)[: a.top]:
        print(f"{100 * timing(e) / total:6.2f}%  {timing(e) / 1e3 / a.steps:8.3f} ms/step  "
              f"x{e.count // a.steps:<4d} {e.key[:140]}")


if __name__ == "__main__":
    main()
