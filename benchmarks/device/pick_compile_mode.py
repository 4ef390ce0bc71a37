"""Turn a `world_step_probe.py` log into the `--set` overrides a sweep's calls then train under.

A sweep's compile mode must be chosen before its first run finishes (it is part of every run id), and a
device machine is given back seconds after a call ends, so the probe and the sweep share one call: this
reads the probe's JSON lines and prints the overrides (nothing for eager) for the call script's SETS.

The rule weighs the sizes probed alike, as a sweep spends comparable card time on each: a mode's cost is
the mean over sizes of eager's rate / its rate (the time it takes relative to eager). A mode replaces eager
only if it is at least `--min-gain` faster by that measure, it ran on every probed size, and its copies'
last training losses stay within `--loss-tol` nats of eager's mean on every size (same seed and stream: a
mode that trains differently is not a speed-up). Eager wins ties and every doubt.

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
            if any(abs(loss - ref) > loss_tol for loss in row["last_train_loss"]):
                break
            ratios.append(eager["targets_per_s_card"] / row["targets_per_s_card"])
        else:
            if ratios:
                costs[mode] = statistics.mean(ratios)
    return costs


def pick(rows: list[dict], min_gain: float = 0.10, loss_tol: float = 0.03) -> str:
    """The winning mode's name, or "eager"."""
    costs = relative_costs(rows, loss_tol)
    if "eager" not in costs:
        return "eager"
    best = min(costs, key=lambda m: (costs[m], m != "eager"))
    return best if costs[best] <= 1.0 - min_gain else "eager"


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
