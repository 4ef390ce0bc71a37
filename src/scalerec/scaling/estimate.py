"""`--dry-run`: what a sweep would cost before it runs — FLOPs per run and an estimated time.

FLOPs come from the same analytic formulas the trainer uses (`scalerec.train.build.flops_per_target`),
and the targets per epoch from the dataset card: leave-one-out keeps n − 2 items of a user's n for
training, i.e. n − 3 next-item targets, so targets/epoch ≈ n_interactions − 3·n_users. Time is
FLOPs / achieved FLOP/s, measured as the median over runs already complete in the sweep dir, or
`spec.est_flops_per_s` before any has finished, plus a fixed per-run overhead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from scalerec.scaling.spec import PlannedRun, SweepSpec


def _targets_per_epoch(run: PlannedRun) -> tuple[float | None, float]:
    """(targets per epoch, mean targets per sequence) estimated from the card counts."""
    if not run.n_interactions or not run.n_users:
        return None, float(run.cfg.data.max_len)
    per_user = max(run.n_interactions / run.n_users - 3.0, 1.0)
    return max(run.n_interactions - 3.0 * run.n_users, 1.0), min(per_user, float(run.cfg.data.max_len))


def _n_items(run: PlannedRun) -> int:
    from scalerec.io import read_json

    card = Path(run.dataset_dir) / "card.json"
    return int(read_json(card).get("n_items", 1)) if card.is_file() else 1


def estimate_run(run: PlannedRun) -> dict[str, Any]:
    """Non-embedding params, targets, FLOPs of one planned run (NaN where the card is missing)."""
    from scalerec.model.flops import param_counts
    from scalerec.train import build

    cfg, t = run.cfg, run.cfg.train
    tpe, per_seq = _targets_per_epoch(run)
    micro = max(1, t.batch_size // t.grad_accum)
    targets_per_micro = micro * (per_seq if t.targets == "all" else 1.0)
    fpt = build.flops_per_target(cfg.model, cfg, micro, targets_per_micro, _n_items(run))
    if t.max_flops is not None:
        targets = t.max_flops / fpt
    elif t.max_targets is not None:
        targets = float(t.max_targets)
    elif t.max_steps is not None:
        targets = t.max_steps * t.batch_size * (per_seq if t.targets == "all" else 1.0)
    else:
        targets = float(t.epochs) * tpe if tpe is not None else math.nan
    return {
        "n_params_non_embedding": param_counts(cfg.model)["non_embedding"],
        "flops_per_target": fpt,
        "est_targets": targets,
        "est_flops": targets * fpt,
    }


def achieved_flops_per_s(rows: list[dict[str, Any]]) -> float | None:
    """Median training FLOP/s over finished runs of a results table (None if there are none)."""
    import numpy as np

    rates = [
        r["flops"] / r["wall_time_s"]
        for r in rows
        if r.get("status") == "ok" and r.get("flops") and r.get("wall_time_s")
    ]
    return float(np.median(rates)) if rates else None


def estimate_runs(spec: SweepSpec, runs: list[PlannedRun], out_dir: Path) -> list[dict[str, Any]]:
    """One row per planned run: cell, status, params, estimated FLOPs and seconds."""
    from scalerec.scaling.sweep import read_results, run_status

    rate = achieved_flops_per_s(read_results(out_dir)) or spec.est_flops_per_s
    rows = []
    for run in runs:
        est = estimate_run(run)
        rows.append(
            {
                "run_id": run.run_id,
                "size": run.size,
                "subset": run.subset,
                "seed": run.seed,
                "lr": run.lr,
                "status": run_status(out_dir, run),
                **est,
                "est_time_s": est["est_flops"] / rate + spec.est_overhead_s,
                "assumed_flops_per_s": rate,
            }
        )
    return rows
