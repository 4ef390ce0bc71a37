"""`--dry-run`: what a sweep would cost before it runs — FLOPs per run and a time measured here.

FLOPs come from the same analytic formulas the trainer uses (`scalerec.train.build.flops_per_target`),
and the targets per epoch from the dataset card: leave-one-out keeps n − 2 items of a user's n for
training, i.e. n − 3 next-item targets, so targets/epoch ≈ n_interactions − 3·n_users.

Time comes from a **calibration** of each size on this device (`calibrate`): the real trainer runs
the run's own config for n1 and n2 steps; the difference gives seconds per step, the rest the fixed
cost (setup, compile, one validation and the test). Results are cached on disk
(`$SCALEREC_CACHE` or `~/.cache/scalerec/calibration.json`) keyed by device + size + config, so a
second dry run, and the sweep's ETA, cost nothing. Without a calibration (`calibrate=False` and
nothing cached) the time falls back to FLOPs / achieved FLOP/s (median of finished runs, else the
spec's `est_flops_per_s`) plus `est_overhead_s`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from scalerec.io import read_json
from scalerec.model.flops import param_counts
from scalerec.scaling.calibrate import calibration, calibration_key
from scalerec.scaling.spec import PlannedRun, SweepSpec


def _targets_per_epoch(run: PlannedRun) -> tuple[float | None, float]:
    """(targets per epoch, mean targets per sequence) estimated from the card counts."""
    world = _world_meta(run)
    if world is not None:
        return None, float(world["world"]["length"] - 1)
    if not run.n_interactions or not run.n_users:
        return None, float(run.cfg.data.max_len)
    per_user = max(run.n_interactions / run.n_users - 3.0, 1.0)
    return max(run.n_interactions - 3.0 * run.n_users, 1.0), min(per_user, float(run.cfg.data.max_len))


def _world_meta(run: PlannedRun) -> dict[str, Any] | None:
    path = Path(run.dataset_dir) / "world.json"
    return read_json(path) if path.is_file() else None


def dataset_n_items(run: PlannedRun) -> int:
    """Catalog size of the run's dataset from its card (1 when there is no card yet)."""
    card = Path(run.dataset_dir) / "card.json"
    return int(read_json(card).get("n_items", 1)) if card.is_file() else 1


def estimate_run(run: PlannedRun) -> dict[str, Any]:
    """Non-embedding params, targets, steps, FLOPs of one planned run (NaN where the card is missing)."""
    from scalerec.train import build

    cfg, t = run.cfg, run.cfg.train
    tpe, per_seq = _targets_per_epoch(run)
    micro = max(1, t.batch_size // t.grad_accum)
    targets_per_micro = micro * (per_seq if t.targets == "all" else 1.0)
    fpt = build.flops_per_target(cfg.model, cfg, micro, targets_per_micro, dataset_n_items(run))
    per_step = t.batch_size * (per_seq if t.targets == "all" else 1.0)
    if t.max_flops is not None:
        targets = t.max_flops / fpt
    elif t.max_targets is not None:
        targets = float(t.max_targets)
    elif t.max_steps is not None:
        targets = t.max_steps * per_step
    else:
        targets = float(t.epochs) * tpe if tpe is not None else math.nan
    steps = (
        t.max_steps if t.max_steps is not None else math.ceil(targets / per_step) if targets == targets else 0
    )
    new_steps = steps - (run.branch_step or 0)  # a branch only pays for its cooldown
    return {
        "n_params_non_embedding": param_counts(cfg.model)["non_embedding"],
        "flops_per_target": fpt,
        "est_targets": targets,
        "est_flops": targets * fpt,
        "est_steps": steps,
        "est_new_flops": new_steps * per_step * fpt,
        "_new_steps": new_steps,
        "_evals": _n_evals(run, steps, per_step, tpe),
    }


def _n_evals(run: PlannedRun, steps: int, per_step: float, tpe: float | None) -> int:
    """Validations the trainer will do (every `eval.every_steps`, else once per epoch, + the last)."""
    every = run.cfg.eval.every_steps
    if every <= 0:
        every = max(1, math.ceil(tpe / per_step)) if tpe else steps
    start = run.branch_step or 0
    return max(1, steps // every - start // every + (steps % every != 0))


def achieved_flops_per_s(rows: list[dict[str, Any]]) -> float | None:
    """Median training FLOP/s over finished runs of a results table (None if there are none)."""
    import numpy as np

    rates = [
        r["flops"] / r["wall_time_s"]
        for r in rows
        if r.get("status") == "ok" and r.get("flops") and r.get("wall_time_s")
    ]
    return float(np.median(rates)) if rates else None


def _time(spec: SweepSpec, run: PlannedRun, est: dict[str, Any], rate: float, cal: dict | None) -> float:
    if cal is None:
        return est["est_new_flops"] / rate + spec.est_overhead_s
    return cal["fixed_s"] + est["_new_steps"] * cal["step_s"] + (est["_evals"] - 1) * cal["eval_s"]


def estimate_runs(
    spec: SweepSpec, runs: list[PlannedRun], out_dir: Path, calibrate: bool = True
) -> list[dict[str, Any]]:
    """One row per planned run: cell, status, params, estimated FLOPs and seconds (and their source)."""
    from scalerec.scaling.sweep import read_results, run_status

    rate = achieved_flops_per_s(read_results(out_dir)) or spec.est_flops_per_s
    rows, cals = [], {}
    for run in runs:
        est = estimate_run(run)
        key = calibration_key(spec, run)
        if key not in cals:
            cals[key] = calibration(spec, run, measure_now=calibrate)
        cal = cals[key]
        rows.append(
            {
                "run_id": run.run_id,
                "size": run.size,
                "subset": run.subset,
                "seed": run.seed,
                "lr": run.lr,
                "role": run.role,
                "holdout": run.holdout,
                "status": run_status(out_dir, run),
                **{k: v for k, v in est.items() if not k.startswith("_")},
                "est_time_s": _time(spec, run, est, rate, cal),
                "time_source": "calibrated" if cal else "flops_rate",
                "assumed_flops_per_s": rate,
            }
        )
    return rows
