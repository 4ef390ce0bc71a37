"""Plan a sweep on a machine without its GPU: runs, D, FLOPs and a stated time model per data point.

`scalerec sweep --dry-run --no-calibrate` prices time with one FLOP rate, which says little for tiny
host-bound models; this prints the plan grouped by (encoder, data point) with each point's exact D
(training targets of its users), and the wall time of `--parallel P` workers under a model whose
every input is a flag, so the estimate can be redone from measured figures:

    time per run = fixed_s + steps × targets_per_step / rate + (validations − 1) × valid_s
    wall = Σ time per run / parallel

Two scenarios: every run to its cap (the upper bound), and runs stopped early at `--stop` steps per
data label (a guess, stated as such). The calibrated dry run on the GPU replaces all of this:
    scalerec sweep SPEC --out OUT --dry-run [--set ...]

    python benchmarks/sweep_plan.py configs/sweeps/pooled_v3.toml --set dataset=DIR --set tokens=DIR
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

from scalerec.data.read.fractions import keep_fraction, training_targets
from scalerec.data.read.sequences import load_sequences
from scalerec.data.read.splits import leave_one_out
from scalerec.scaling.estimate import estimate_runs
from scalerec.scaling.spec import load_spec, plan_runs


def _seconds(steps: float, per_step: float, every: int, a: argparse.Namespace) -> float:
    n_valid = max(1, math.ceil(steps / every)) if every > 0 else 1
    return a.fixed_s + steps * per_step / a.rate + (n_valid - 1) * a.valid_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="spec override, repeatable")
    ap.add_argument("--rate", type=float, default=70_000, help="training targets/s of one worker")
    ap.add_argument("--fixed-s", type=float, default=24.0, help="seconds per run besides training steps")
    ap.add_argument("--valid-s", type=float, default=1.0, help="seconds per extra validation")
    ap.add_argument("--parallel", type=int, default=14)
    ap.add_argument("--stop", default="", help="assumed early-stop step per label, e.g. f0.01=250,f0.1=500")
    a = ap.parse_args()
    spec = load_spec(a.spec, a.sets)
    runs = plan_runs(spec, "/tmp/sweep_plan_unused")
    est = estimate_runs(spec, runs, Path("/tmp/sweep_plan_unused"), calibrate=False)
    train = leave_one_out(load_sequences(spec.dataset)).train
    for f in spec.train_fractions:
        print(f"f={f:g}: D = {training_targets(keep_fraction(train, f)):,} training targets")
    stop = {k: float(v) for k, v in (x.split("=") for x in a.stop.split(",") if x)}
    groups: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])
    for run, r in zip(runs, est, strict=True):
        steps, every = r["est_steps"], run.cfg.eval.every_steps
        per_step = r["est_targets"] / max(1, steps)
        g = groups[(run.encoder, run.subset)]
        g[0] += 1
        g[1] += r["est_flops"]
        g[2] += r["est_targets"]
        g[3] += _seconds(steps, per_step, every, a)
        g[4] += _seconds(min(steps, stop.get(run.subset, steps)), per_step, every, a)
    print(f"{'encoder':8} {'data':7} {'runs':>5} {'FLOPs':>9} {'targets':>9} {'cap s':>8} {'stop s':>8}")
    total = [0.0] * 5
    for (enc, label), g in sorted(groups.items()):
        print(f"{enc:8} {label:7} {g[0]:5d} {g[1]:9.3g} {g[2]:9.3g} {g[3]:8.0f} {g[4]:8.0f}")
        total = [t + x for t, x in zip(total, g, strict=True)]
    print(f"total: {int(total[0])} runs, {total[1]:.3g} FLOPs, {total[2]:.3g} targets at the cap")
    for name, s in (("every run to its cap", total[3]), ("early stops as --stop", total[4])):
        print(
            f"{name}: {s:,.0f} worker-s = {s / a.parallel / 60:.1f} min with --parallel {a.parallel} "
            f"(rate {a.rate:,.0f} targets/s/worker, {a.fixed_s} s/run, {a.valid_s} s/validation)"
        )


if __name__ == "__main__":
    main()
