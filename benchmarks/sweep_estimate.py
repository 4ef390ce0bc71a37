"""Benchmark: `scalerec sweep --dry-run`'s estimated time against the sweep's real wall time.

Issue 23 asks for an estimate within 2x of the real time, measured on the machine that runs the
sweep. This runs, in order and in this process's environment: the dry run (which calibrates each
size on this device unless the cache already holds it; its own duration is reported apart), then
the sweep itself into a fresh OUT, and prints one JSON line with both times and their ratio.

    python benchmarks/sweep_estimate.py SPEC OUT [--set key=value ...]

Example (the demo sweep; data and token tables as in the header of configs/sweeps/demo.toml):
    python benchmarks/sweep_estimate.py configs/sweeps/demo.toml runs/demo_sweep \\
        --set dataset=data/demo --set 'tokens=data/demo_tokens/{subset}'
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from scalerec.scaling.spec import load_spec
from scalerec.scaling.sweep import run_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--parallel", type=int, default=1)
    args = ap.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty: the real time needs a sweep that runs every cell")
    t0 = time.perf_counter()
    plan = run_sweep(load_spec(args.spec, args.overrides), args.out, dry_run=True)
    dry_s = time.perf_counter() - t0
    estimate = sum(r["est_time_s"] for r in plan)
    t0 = time.perf_counter()
    rows = run_sweep(load_spec(args.spec, args.overrides), args.out, parallel=args.parallel)
    real = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "benchmark": "sweep_estimate",
                "spec": str(args.spec),
                "runs": len(plan),
                "runs_ok": sum(r.get("status") == "ok" for r in rows),
                "estimate_s": round(estimate, 1),
                "real_s": round(real, 1),
                "real_over_estimate": round(real / estimate, 3),
                "dry_run_s": round(dry_s, 1),
                "time_source": sorted({r["time_source"] for r in plan}),
                "machine": f"{platform.node()} {platform.processor() or platform.machine()} "
                f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}",
            }
        )
    )


if __name__ == "__main__":
    main()
