"""Warmup-stable-decay sweeps: one trunk per (size, LR, seed), cooldown branches for more D points.

Under the wsd schedule (`scalerec.train.schedule.wsd`) the LR is constant between warmup and the
final decay, so the trunk's state at any stable step s is exactly the state a run of s + d steps
would have at step s. A branch therefore resumes the trunk's checkpoint at s = (1 - decay_frac)·T_b
and decays over the last decay_frac·T_b steps: it is, step for step, the independent run of T_b
steps (same config, same run id as that run would have), at (1 - decay_frac) of the cost. The
design follows Hägele et al. (2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed
Training Durations"). The trunk is paused at each branch step (`stop_after_steps`, a resumable stop
the trainer already has) to snapshot `state.pt` as `branch-<step>.pt`; no trainer hook is needed.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scalerec.config import dumps_toml
from scalerec.io import atomic_write
from scalerec.scaling.spec import PlannedRun
from scalerec.train.schedule import lr_factor


def snapshot_path(trunk_dir: Path, step: int) -> Path:
    return trunk_dir / f"branch-{step}.pt"


def resumable(run_dir: Path) -> bool:
    """Whether a run dir holds the state of an unfinished run. A sweep's run dir is named by the hash
    of its config (`PlannedRun.run_id`), so that state is this very run's: a run killed by a device
    call's time limit continues in the next call instead of starting over (a held-out run of ~4x the
    fitted compute outlasts any one call)."""
    return (run_dir / "state.pt").is_file() and not (run_dir / "final.json").is_file()


def _state_step(run_dir: Path) -> int:
    import torch

    state = torch.load(run_dir / "state.pt", map_location="cpu", weights_only=False)
    return int(state["counters"]["step"])


def _branch_step(run: PlannedRun) -> int:
    """The step a branch leaves its trunk at (only branches of a WSD trunk carry one)."""
    if run.branch_step is None:
        raise ValueError(f"run {run.cfg.run.name} is not a branch: it has no branch_step")
    return int(run.branch_step)


def _start_branch(trunk_dir: Path, run: PlannedRun) -> Path:
    """Branch dir = the trunk's snapshot at `branch_step` (best-so-far reset) + its own config."""
    import torch

    bdir = Path(run.cfg.run.out) / run.cfg.run.name
    snap = snapshot_path(trunk_dir, _branch_step(run))
    if not snap.is_file():
        raise RuntimeError(f"trunk snapshot {snap} is missing: rerun the trunk {trunk_dir.name}")
    bdir.mkdir(parents=True, exist_ok=True)
    for name in ("final.json", "model.safetensors", "meta.json", "error.json"):
        (bdir / name).unlink(missing_ok=True)
    state = torch.load(snap, map_location="cpu", weights_only=False)
    state["counters"].update(best_ndcg=-1.0, best_step=0, best_valid={}, bad_evals=0, stopped_early=False)
    _branch_lr(state, run.cfg.train, _branch_step(run))
    with atomic_write(bdir / "state.pt", mode="wb") as fh:
        torch.save(state, fh)
    with atomic_write(bdir / "config.toml") as fh:
        fh.write(dumps_toml(run.cfg) + "\n")
    if (trunk_dir / "metrics.jsonl").is_file():
        shutil.copyfile(trunk_dir / "metrics.jsonl", bdir / "metrics.jsonl")
    return bdir


def _branch_lr(state: dict[str, Any], t: Any, step: int) -> None:
    """The snapshot's optimizer holds the LR the *trunk* set for step `step`; the branch starts
    decaying there, so set the branch schedule's value (else its first cooldown step runs at peak)."""
    factor = lr_factor("wsd", step, t.max_steps, t.warmup_steps or 0, t.min_lr_ratio, t.decay_steps)
    sched = state["scheduler"]
    lrs = [base * factor for base in sched["base_lrs"]]
    sched["_last_lr"] = lrs
    for group, lr in zip(state["optimizer"]["param_groups"], lrs, strict=True):
        group["lr"] = lr


def run_group(
    train: Callable[..., Any],
    trunk: PlannedRun,
    branches: list[PlannedRun],
    done: Callable[[PlannedRun], bool],
) -> None:
    """Train the trunk (pausing at every missing branch's step to snapshot it), then each missing
    branch from its snapshot. Resumes a trunk that was interrupted; raises on the first failure."""
    tdir = Path(trunk.cfg.run.out) / trunk.cfg.run.name
    todo = [b for b in branches if not done(b)]
    if not done(trunk):
        resume = resumable(tdir)
        at = _state_step(tdir) if resume else 0
        for step in sorted({_branch_step(b) for b in todo}):
            if step <= at and not snapshot_path(tdir, step).is_file():
                resume, at = False, 0  # the snapshot is lost: retrain the trunk from scratch
        for step in sorted({_branch_step(b) for b in todo if _branch_step(b) > at}):
            cfg = copy.deepcopy(trunk.cfg)
            cfg.train.stop_after_steps = step
            train(cfg, resume=resume)
            shutil.copyfile(tdir / "state.pt", snapshot_path(tdir, step))
            resume = True
        train(trunk.cfg, resume=resume)
    for b in todo:
        if not _branch_in_progress(b):  # a branch killed after its first checkpoint goes on from there
            _start_branch(tdir, b)
        train(b.cfg, resume=True)


def _branch_in_progress(run: PlannedRun) -> bool:
    """Whether a branch's dir holds its own state past the branch step (a run killed mid-cooldown): its
    dir is named by its config's hash, so that state belongs to this very branch."""
    bdir = Path(run.cfg.run.out) / run.cfg.run.name
    return resumable(bdir) and _state_step(bdir) > _branch_step(run)
