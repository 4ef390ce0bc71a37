"""The training loop (nanoGPT `train.py` / litgpt `fit` style): one explicit loop, commented sections.

`train(cfg)` builds everything from a `RunConfig` (see `build.py`), runs optimizer steps until
the budget (steps / targets / FLOPs / epochs) is spent or validation NDCG@10 stops improving,
then evaluates the best checkpoint on the test split and writes `final.json` last. The inner loop
never synchronises with the host except at log steps: losses accumulate on the device and the
negatives are drawn on the device. Under `torchrun`, one process per device trains with DDP
(gloo on CPU); every rank builds the same global batch and keeps its slice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scalerec import device as dev
from scalerec import runlog
from scalerec.eval.heldout import evaluate_split, subset
from scalerec.io import atomic_write
from scalerec.train import build, checkpoint, numerics
from scalerec.train.config import RunConfig
from scalerec.train.objective import distinct_items
from scalerec.train.setup import Runtime, setup


@dataclass
class RunSummary:
    """What `train` returns: the run dir, `final.json`'s content, and whether the run finished."""

    run_dir: Path
    final: dict[str, Any]
    completed: bool = True


def train(cfg: RunConfig, resume: bool = False, overwrite: bool = False, extend: bool = False) -> RunSummary:
    """Train one model as `cfg` says; with `resume`, continue `<out>/<name>` from its `state.pt`;
    with `overwrite`, replace the run of that name — only once the new one has finished; with `extend`,
    continue a finished run that its time box stopped, up to `cfg`'s (larger) `train.max_minutes`, the
    old result kept until the longer run has finished (bit-for-bit the run an uncut box would give).
    MLflow gets the run's end: FINISHED, FAILED (an exception) or KILLED (Ctrl-C or SIGTERM)."""
    rt = setup(cfg, resume, overwrite, extend)
    status = "FAILED"
    try:
        with runlog.sigterm_as_interrupt():
            completed = _loop(rt)
            final = _finish(rt) if completed else {}
        if completed and rt.claim is not None:
            if torch.distributed.is_initialized():
                torch.distributed.barrier()  # no rank still reads the staging dir that rank 0 moves now
            if runlog.is_main():
                rt.dir = rt.claim.commit()
        status = "FINISHED" if completed else "KILLED"
        return RunSummary(rt.dir, final, completed)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        rt.bar.close()
        rt.log.close(status)
        if rt.claim is not None:
            rt.claim.release()


def _loop(rt: Runtime) -> bool:
    """Optimizer steps until the budget is spent (True) or `stop_after_steps` hits (False)."""
    t, c, total = rt.cfg.train, rt.counters, rt.budget.total_steps
    stream = rt.batches.batches()
    every_eval = build.eval_every(rt.cfg, rt.budget)
    clock = runlog.LogClock(t.log_every, t.log_seconds, timed=runlog.world_size() == 1, step=c.step)
    loss_acc = torch.zeros((), device=rt.device)
    window_targets, t_segment = 0, time.perf_counter()
    rt.state_saved_at = t_segment
    c.stopped_by_time = False  # an extended run: the clock decides again at the next validation
    while c.step < total and not c.stopped_early:
        # -- one optimizer step over grad_accum micro-batches --------------------------------
        micro = [next(stream) for _ in range(t.grad_accum)]
        n_global = sum(b.n_targets for b in micro)
        loss_acc += train_step(rt, micro, n_global)
        c.step += 1
        c.targets_seen += n_global
        window_targets += n_global
        rt.bar.advance(c.step)  # no sync: the bar redraws (and re-estimates its ETA) on its own clock
        # -- log every log_every steps or log_seconds (the only host syncs; stops a diverged run)
        if clock.due(c.step) or c.step == total:
            _log_train(rt, loss_acc, window_targets, *clock.lap(c.step))
            loss_acc.zero_()
            window_targets = 0
            if c.step < total and c.step % every_eval and _timer_due(rt):  # between validations
                c.wall_time_s += time.perf_counter() - t_segment
                t_segment = time.perf_counter()
                _save_state(rt)
        # -- validate, keep the best weights, stop early; save resumable state ----------------
        if c.step % every_eval == 0 or c.step == total:
            _validate(rt)
            c.wall_time_s += time.perf_counter() - t_segment
            t_segment = time.perf_counter()
            # a run that ends here anyway (its last step, or early stopping) was not cut by the clock
            ending = c.step == total or c.stopped_early
            c.stopped_by_time = not ending and _out_of_time(t.max_minutes, c.wall_time_s, rt.device)
            if _state_due(rt, c.stopped_by_time or c.stopped_early or c.step == total):
                _save_state(rt)
            if c.stopped_by_time:
                break
        stop = t.stop_after_steps
        if stop is not None and rt.start_step < stop <= c.step < total:
            c.wall_time_s += time.perf_counter() - t_segment
            _save_state(rt)
            return False
    c.wall_time_s += time.perf_counter() - t_segment
    return True


def _out_of_time(max_minutes: float | None, wall_s: float, device: torch.device) -> bool:
    """Whether the wall-clock budget is spent; under DDP rank 0's clock decides for every rank, so
    all ranks leave the loop at the same step."""
    if max_minutes is None:
        return False
    return _rank0_decides(wall_s > 60.0 * max_minutes, device)


def _rank0_decides(flag: bool, device: torch.device) -> bool:
    """`flag` as rank 0 has it, on every DDP rank (their clocks differ, their branches must not); a single
    process keeps its own, with no device round trip (a tensor and a sync per log point otherwise)."""
    if runlog.world_size() == 1:
        return flag
    import torch.distributed as dist

    shared = torch.tensor([float(flag)], device=device)
    dist.broadcast(shared, src=0)
    return bool(shared.item())


def _timer_due(rt: Runtime) -> bool:
    """Whether a log point between validations writes state.pt: once `train.save_state_s` (> 0) seconds
    passed since the last write. Why: a run that validates only at its end (world_v6's trunks,
    `eval.every_steps = 1e6`) otherwise wrote state only at its cooldown snapshots, and a device call cut
    at step 13,000 of 15,000 resumed from step 6,000. Log points fall on the same steps on every DDP rank."""
    every = rt.cfg.train.save_state_s
    return bool(every) and _state_due(rt, False)


def _state_due(rt: Runtime, stopping: bool) -> bool:
    """Whether this validation point writes state.pt: always where the run stops, else once
    `train.save_state_s` seconds passed since the last write. Under DDP rank 0's clock decides, so
    every rank saves (its RNG) at the same step."""
    every = rt.cfg.train.save_state_s
    if stopping or every == 0:
        return True
    if every is None:
        return False
    return _rank0_decides(time.perf_counter() - rt.state_saved_at >= every, rt.device)


def train_step(rt: Runtime, micro: list, n_global: int) -> torch.Tensor:
    """Forward + backward of each micro-batch, clip, optimizer and scheduler step. Returns the
    detached local loss sum (device tensor). Losses are sums scaled by world/n_global, so DDP's
    gradient average equals the mean over every target of the global batch."""
    scale = runlog.world_size() / max(1, n_global)
    total = torch.zeros((), device=rt.device)
    ddp: Any = rt.step_module if hasattr(rt.step_module, "no_sync") else None  # DDP-wrapped
    for i, batch in enumerate(micro):
        neg_ids = draw_negatives(rt, batch.targets)
        pos = batch.positions  # packed rows (scalerec.train.batches); padded: None
        distinct = (
            distinct_items(batch.inputs, batch.targets, neg_ids, packed=pos is not None)
            if rt.distinct_items
            else None
        )
        last = i == len(micro) - 1
        with ddp.no_sync() if ddp is not None and not last else contextlib.nullcontext():
            with dev.autocast(rt.device, rt.dtype):
                loss = rt.step_module(batch.inputs, batch.targets, neg_ids, distinct, pos)
            (loss * scale).backward()
        total += loss.detach()
    if rt.cfg.train.grad_clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(rt.model.parameters(), rt.cfg.train.grad_clip)
        _note_grad_norm(rt, norm)
    rt.opt.step()
    rt.sched.step()
    rt.opt.zero_grad(set_to_none=True)
    return total


def _note_grad_norm(rt: Runtime, norm: torch.Tensor) -> None:
    """Add one step's pre-clip gradient norm, and whether the clip scaled it down, to the sums the
    next log line reports (train/grad_norm, train/clipped): on the device, no sync. Why: how often the
    clip bites changes the effective step size, and a run cannot tell that from its loss alone."""
    step = torch.stack([norm.float(), (norm > rt.cfg.train.grad_clip).float()])
    rt.grad_norms = step if rt.grad_norms is None else rt.grad_norms + step


def draw_negatives(rt: Runtime, targets: torch.Tensor) -> torch.Tensor | None:
    """Negative ids for one micro-batch: [K] shared, [N, K] per target, [N] for BCE, None for full."""
    t = rt.cfg.train
    if t.loss == "full":
        return None
    n = rt.objective.n_slots(targets)
    shape = (n,) if t.loss == "bce" else ((t.negatives,) if t.shared_negatives else (n, t.negatives))
    ids, _ = rt.sampler.sample(shape, rt.gen, targets=targets)
    return ids


def _record(rt: Runtime, **metrics: Any) -> dict[str, Any]:
    c = rt.counters
    epoch = c.targets_seen / max(1, rt.budget.targets_per_epoch)
    return {
        "step": c.step,
        "targets_seen": c.targets_seen,
        "flops": c.targets_seen * rt.budget.flops_per_target,
        "epoch": round(epoch, 4),
        **metrics,
    }


def _log_train(rt: Runtime, loss_acc: torch.Tensor, n_targets: int, seconds: float, first: int) -> None:
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(loss_acc)
    loss = loss_acc.item() / max(1, n_targets)
    numerics.check_loss(loss, first, rt.counters.step, rt.cause)
    rate = n_targets / max(seconds, 1e-9)
    grads: dict[str, float] = {}
    if rt.grad_norms is not None:  # mean pre-clip norm and share of steps clipped over this window
        norm_sum, clipped = rt.grad_norms.tolist()
        steps = max(1, rt.counters.step - first + 1)
        grads = {"train/grad_norm": norm_sum / steps, "train/clipped": clipped / steps}
        rt.grad_norms = None
    rec = _record(
        rt, **{"train/loss": loss, "train/lr": rt.sched.get_last_lr()[0], "train/targets_per_s": rate,
               **grads}
    )
    rt.log.write(rec)
    rt.bar.update(rt.counters.step, f"loss {loss:.4f} | {runlog.fmt_count(rate)} targets/s")
    if not rt.bar.enabled:
        runlog.ProgressBar.print(rt.bar, runlog.log_line(rec))


def _validate(rt: Runtime) -> None:
    """Validation metrics; a new best `eval.monitor` value → save weights; patience exhausted → stop early."""
    e, c = rt.cfg.eval, rt.counters
    numerics.check_weights(rt.model, c.step, rt.cause)
    hist, tgt = subset(rt.split.valid[0], rt.split.valid[1], e.max_users, rt.cfg.run.seed)
    if hist.n_users == 0:
        return
    rt.bar.phase("valid")
    m = evaluate_split(
        rt.model, hist, tgt, rt.cfg.data.max_len, e.ks, e.batch_size, rt.device, rt.dtype, e.mask_seen
    )
    rec = _record(rt, **{f"valid/{k}": v for k, v in m.items()})
    rt.log.write(rec)
    keys = ("step", "targets_seen", "flops", "valid/loss", "valid/ndcg@10", "valid/hr@10", "valid/mrr@10")
    rt.bar.print(runlog.log_line({k: rec[k] for k in keys if k in rec}))
    rt.bar.phase()
    drift = numerics.logit_offset_warning(m.get("logit_mean"), rt.dtype is not None, rt.objective.z_loss)
    if drift and not rt.offset_warned and runlog.is_main():
        rt.offset_warned = True
        warnings.warn(drift, stacklevel=2)
    score = monitored_score(m, e.monitor)
    if not c.best_valid or score > c.best_ndcg:  # the first validation is the best so far, whatever its score
        c.best_ndcg, c.best_step, c.best_valid, c.bad_evals = score, c.step, m, 0
        if runlog.is_main():  # written with the next state.pt, so the two always agree on disk
            rt.pending_best = checkpoint.snapshot(rt.model)
    else:
        c.bad_evals += 1
        c.stopped_early = e.patience > 0 and c.bad_evals >= e.patience


def monitored_score(metrics: dict[str, float], monitor: str) -> float:
    """The validation score to maximise: the monitored metric, or minus the loss."""
    return -float(metrics["loss"]) if monitor == "loss" else float(metrics[monitor])


def _save_state(rt: Runtime) -> None:
    """Write the best weights found since the last call, then state.pt (its counters name them)."""
    rt.state_saved_at = time.perf_counter()
    _flush_best(rt)
    if not runlog.is_main():  # other ranks keep only their own RNG streams (dropout, per-rank negatives)
        checkpoint.save_rank_rng(
            rt.dir, runlog.rank(), {"rng": dev.rng_state(), "generator": rt.gen.get_state()}
        )
        return
    checkpoint.save_state(
        rt.dir,
        {
            "model": rt.model.state_dict(),
            "optimizer": rt.opt.state_dict(),
            "scheduler": rt.sched.state_dict(),
            "rng": dev.rng_state(),
            "generator": rt.gen.get_state(),
            "data": rt.batches.state_dict(),
            "counters": dataclasses.asdict(rt.counters),
            "run_id": rt.run_id,
        },
    )


def _flush_best(rt: Runtime) -> None:
    if rt.pending_best is not None:
        checkpoint.save_weights(rt.dir, rt.pending_best, {**rt.meta, "step": rt.counters.best_step})
        rt.pending_best = None


def _finish(rt: Runtime) -> dict[str, Any]:
    """Best weights → test metrics → `final.json` (written last: its presence = run complete)."""
    from safetensors.torch import load_file

    c, e = rt.counters, rt.cfg.eval
    numerics.check_weights(rt.model, c.step, rt.cause)
    _flush_best(rt)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    if not (rt.dir / "model.safetensors").is_file():
        if runlog.is_main():
            checkpoint.save_weights(rt.dir, rt.model, {**rt.meta, "step": c.step})
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        c.best_step = c.step
    rt.model.load_state_dict(load_file(str(rt.dir / "model.safetensors"), device=str(rt.device)))
    hist, tgt = rt.split.test
    rt.bar.phase("test")
    test = (
        evaluate_split(
            rt.model, hist, tgt, rt.cfg.data.max_len, e.ks, e.batch_size, rt.device, rt.dtype, e.mask_seen,
            e.paper_sampled,
        )
        if hist.n_users
        else {}
    )
    final = {
        "format_version": 1,
        "run_id": rt.run_id,
        "name": rt.claim.target.name if rt.claim else rt.dir.name,
        "params": rt.model.param_counts(),
        "flops": {
            "per_target": rt.budget.flops_per_target,
            "total": c.targets_seen * rt.budget.flops_per_target,
        },
        "targets_seen": c.targets_seen,
        "steps": c.step,
        "epochs": c.targets_seen / rt.budget.targets_per_epoch,
        **rt.train_data,  # train_fraction, train_users_kept, unique_train_targets (D of a sweep)
        "wall_time_s": c.wall_time_s,
        "device": dev.describe(rt.device),
        "best_step": c.best_step,
        "valid": c.best_valid,
        "test": test,
        "stopped_early": c.stopped_early,
        "stopped_by_time": c.stopped_by_time,
        "targets_per_s": c.targets_seen / max(c.wall_time_s, 1e-9),
        "model_size": rt.cfg.model_size,
        "recipe": rt.cfg.recipe,
        "dataset": str(rt.cfg.data.dataset),
        "tokens": str(rt.cfg.data.tokens) if rt.cfg.data.tokens else None,
    }
    if runlog.is_main():
        rt.log.write(_record(rt, **{f"test/{k}": v for k, v in test.items()}))
        with atomic_write(rt.dir / "final.json") as fh:
            fh.write(numerics.dumps(final, indent=2) + "\n")
    return final
