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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scalerec import device as dev
from scalerec import runlog
from scalerec.eval.heldout import evaluate_split, subset
from scalerec.io import write_json
from scalerec.train import build, checkpoint
from scalerec.train.config import RunConfig
from scalerec.train.objective import distinct_items
from scalerec.train.setup import Runtime, setup


@dataclass
class RunSummary:
    """What `train` returns: the run dir, `final.json`'s content, and whether the run finished."""

    run_dir: Path
    final: dict[str, Any]
    completed: bool = True


def train(cfg: RunConfig, resume: bool = False) -> RunSummary:
    """Train one model as `cfg` says; with `resume`, continue `<out>/<name>` from its `state.pt`."""
    rt = setup(cfg, resume)
    status = "FAILED"
    try:
        completed = _loop(rt)
        final = _finish(rt) if completed else {}
        status = "FINISHED" if completed else "KILLED"
        return RunSummary(rt.dir, final, completed)
    finally:
        rt.bar.close()
        if rt.log.tracker is not None:
            rt.log.tracker.finish(status)


def _loop(rt: Runtime) -> bool:
    """Optimizer steps until the budget is spent (True) or `stop_after_steps` hits (False)."""
    t, c, total = rt.cfg.train, rt.counters, rt.budget.total_steps
    stream = rt.batches.batches()
    every_eval = build.eval_every(rt.cfg, rt.budget)
    loss_acc = torch.zeros((), device=rt.device)
    window_targets, t_window, t_segment = 0, time.perf_counter(), time.perf_counter()
    while c.step < total and not c.stopped_early:
        # -- one optimizer step over grad_accum micro-batches --------------------------------
        micro = [next(stream) for _ in range(t.grad_accum)]
        n_global = sum(b.n_targets for b in micro)
        loss_acc += train_step(rt, micro, n_global)
        c.step += 1
        c.targets_seen += n_global
        window_targets += n_global
        # -- log (the only host syncs) ---------------------------------------------------------
        if c.step % t.log_every == 0 or c.step == total:
            now = time.perf_counter()
            _log_train(rt, loss_acc, window_targets, now - t_window)
            loss_acc.zero_()
            window_targets, t_window = 0, now
        # -- validate, keep the best weights, stop early; save resumable state ----------------
        if c.step % every_eval == 0 or c.step == total:
            _validate(rt)
            c.wall_time_s += time.perf_counter() - t_segment
            t_segment = time.perf_counter()
            _save_state(rt)
        stop = t.stop_after_steps
        if stop is not None and rt.start_step < stop <= c.step < total:
            c.wall_time_s += time.perf_counter() - t_segment
            _save_state(rt)
            return False
    c.wall_time_s += time.perf_counter() - t_segment
    return True


def train_step(rt: Runtime, micro: list, n_global: int) -> torch.Tensor:
    """Forward + backward of each micro-batch, clip, optimizer and scheduler step. Returns the
    detached local loss sum (device tensor). Losses are sums scaled by world/n_global, so DDP's
    gradient average equals the mean over every target of the global batch."""
    scale = runlog.world_size() / max(1, n_global)
    total = torch.zeros((), device=rt.device)
    ddp = rt.step_module if hasattr(rt.step_module, "no_sync") else None
    for i, batch in enumerate(micro):
        neg_ids = draw_negatives(rt, batch.targets)
        distinct = distinct_items(batch.inputs, batch.targets, neg_ids) if rt.distinct_items else None
        last = i == len(micro) - 1
        with ddp.no_sync() if ddp is not None and not last else contextlib.nullcontext():
            with dev.autocast(rt.device, rt.dtype):
                loss = rt.step_module(batch.inputs, batch.targets, neg_ids, distinct)
            (loss * scale).backward()
        total += loss.detach()
    if rt.cfg.train.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(rt.model.parameters(), rt.cfg.train.grad_clip)
    rt.opt.step()
    rt.sched.step()
    rt.opt.zero_grad(set_to_none=True)
    return total


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


def _log_train(rt: Runtime, loss_acc: torch.Tensor, n_targets: int, seconds: float) -> None:
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(loss_acc)
    loss = loss_acc.item() / max(1, n_targets)
    rate = n_targets / max(seconds, 1e-9)
    rec = _record(
        rt, **{"train/loss": loss, "train/lr": rt.sched.get_last_lr()[0], "train/targets_per_s": rate}
    )
    rt.log.write(rec)
    rt.bar.update(rt.counters.step, f"loss {loss:.4f} | {runlog.fmt_count(rate)} targets/s")
    if not rt.bar.enabled:
        runlog.ProgressBar.print(rt.bar, runlog.log_line(rec))


def _validate(rt: Runtime) -> None:
    """Validation metrics; new best NDCG@10 → save weights; patience exhausted → stop early."""
    e, c = rt.cfg.eval, rt.counters
    hist, tgt = subset(rt.split.valid[0], rt.split.valid[1], e.max_users, rt.cfg.run.seed)
    if hist.n_users == 0:
        return
    m = evaluate_split(
        rt.model, hist, tgt, rt.cfg.data.max_len, e.ks, e.batch_size, rt.device, rt.dtype, e.mask_seen
    )
    rec = _record(rt, **{f"valid/{k}": v for k, v in m.items()})
    rt.log.write(rec)
    keys = ("step", "targets_seen", "flops", "valid/loss", "valid/ndcg@10", "valid/hr@10", "valid/mrr@10")
    rt.bar.print(runlog.log_line({k: rec[k] for k in keys if k in rec}))
    score = m.get("ndcg@10", -m["loss"])
    if score > c.best_ndcg:
        c.best_ndcg, c.best_step, c.best_valid, c.bad_evals = score, c.step, m, 0
        if runlog.is_main():
            checkpoint.save_weights(rt.dir, rt.model, {**rt.meta, "step": c.step})
    else:
        c.bad_evals += 1
        c.stopped_early = e.patience > 0 and c.bad_evals >= e.patience


def _save_state(rt: Runtime) -> None:
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
        },
    )


def _finish(rt: Runtime) -> dict[str, Any]:
    """Best weights → test metrics → `final.json` (written last: its presence = run complete)."""
    from safetensors.torch import load_file

    c, e = rt.counters, rt.cfg.eval
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
    test = (
        evaluate_split(
            rt.model, hist, tgt, rt.cfg.data.max_len, e.ks, e.batch_size, rt.device, rt.dtype, e.mask_seen
        )
        if hist.n_users
        else {}
    )
    final = {
        "format_version": 1,
        "run_id": build.run_id(rt.cfg),
        "name": rt.dir.name,
        "params": rt.model.param_counts(),
        "flops": {
            "per_target": rt.budget.flops_per_target,
            "total": c.targets_seen * rt.budget.flops_per_target,
        },
        "targets_seen": c.targets_seen,
        "steps": c.step,
        "epochs": c.targets_seen / rt.budget.targets_per_epoch,
        "wall_time_s": c.wall_time_s,
        "device": dev.describe(rt.device),
        "best_step": c.best_step,
        "valid": c.best_valid,
        "test": test,
        "stopped_early": c.stopped_early,
        "targets_per_s": c.targets_seen / max(c.wall_time_s, 1e-9),
        "model_size": rt.cfg.model_size,
        "recipe": rt.cfg.recipe,
        "dataset": str(rt.cfg.data.dataset),
        "tokens": str(rt.cfg.data.tokens) if rt.cfg.data.tokens else None,
    }
    if runlog.is_main():
        rt.log.write(_record(rt, **{f"test/{k}": v for k, v in test.items()}))
        write_json(rt.dir / "final.json", final)
    return final
