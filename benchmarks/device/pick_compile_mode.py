"""Turn a `world_step_probe.py` log into the `--set` overrides a sweep's calls then train under.

A sweep's compile mode must be chosen before its first run finishes (it is part of every run id), and a
device machine is given back seconds after a call ends, so the probe and the sweep share one call: this
reads the probe's JSON lines and prints the overrides (nothing for eager) for the call script's SETS.

The rule weighs the sizes probed alike, as a sweep spends comparable card time on each: a mode's cost is
the mean over sizes of eager's rate / its rate (the time it takes relative to eager). A mode is admissible
if it ran on every probed size and the mean of its copies' last training losses is within `--loss-tol` nats
of eager's mean on every size (same seed and stream: a mode that trains differently is not a speed-up).
Modes are then taken in order of how much machinery they add (eager, default, reduce-overhead, others), and
each replaces the one chosen so far only if it is at least `--min-gain` faster than it: a mode that adds
CUDA graphs must earn its place against plain compilation, not only against eager. Eager wins ties and
every doubt.

Until 2026-12-07 (after world_v6's first probe) every copy had to lie within the tolerance, and each mode was
compared with eager alone. That probe showed compiled copies of one seed differing from each other by up to
0.08 nats at step 500 while eager's three agreed to the last digit: the per-copy test measured whether a mode
is bitwise reproducible, which no compiled mode is, not whether it trains differently. And whole runs under
reduce-overhead had not been checked on a GPU, while default had trained every compiled accuracy run.

    python benchmarks/device/pick_compile_mode.py probe.jsonl            # prints e.g.
    base.train.compile=true base.train.compile_mode=reduce-overhead
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def read_rows(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            if "mode" in row and "size" in row:
                rows.append(row)
    return rows


def relative_costs(rows: list[dict], loss_tol: float) -> dict[str, float]:
    """Each admissible mode's mean time relative to eager (eager = 1.0); inadmissible modes are left out."""
    by = {(r["size"], r["mode"]): r for r in rows}
    sizes = sorted({r["size"] for r in rows})
    modes = sorted({r["mode"] for r in rows})
    costs: dict[str, float] = {}
    for mode in modes:
        ratios = []
        for size in sizes:
            eager, row = by.get((size, "eager")), by.get((size, mode))
            if not eager or not row or "error" in row or "error" in eager:
                break
            if not row.get("targets_per_s_card") or not eager.get("targets_per_s_card"):
                break
            ref = statistics.mean(eager["last_train_loss"])
            if abs(statistics.mean(row["last_train_loss"]) - ref) > loss_tol:
                break
            ratios.append(eager["targets_per_s_card"] / row["targets_per_s_card"])
        else:
            if ratios:
                costs[mode] = statistics.mean(ratios)
    return costs


MACHINERY = ("eager", "default", "reduce-overhead")
"""Modes in the order of what they add: compiled kernels, then CUDA graphs (others, e.g. max-autotune,
after them)."""


def pick(rows: list[dict], min_gain: float = 0.10, loss_tol: float = 0.03) -> str:
    """The winning mode's name, or "eager"."""
    costs = relative_costs(rows, loss_tol)
    if "eager" not in costs:
        return "eager"
    order = sorted(costs, key=lambda m: (MACHINERY.index(m) if m in MACHINERY else len(MACHINERY), m))
    chosen = "eager"
    for mode in order[1:]:
        if costs[mode] <= costs[chosen] * (1.0 - min_gain):
            chosen = mode
    return chosen


def overrides(mode: str) -> str:
    if mode == "eager":
        return ""
    return f"base.train.compile=true base.train.compile_mode={mode}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probe_log", type=Path)
    ap.add_argument("--min-gain", type=float, default=0.10)
    ap.add_argument("--loss-tol", type=float, default=0.03)
    args = ap.parse_args(argv)
    rows = read_rows(args.probe_log)
    costs = relative_costs(rows, args.loss_tol)
    mode = pick(rows, args.min_gain, args.loss_tol)
    print(f"relative time per mode: {json.dumps({m: round(c, 3) for m, c in costs.items()})}; chosen: {mode}",
          file=sys.stderr)
    print(overrides(mode))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
