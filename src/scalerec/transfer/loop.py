"""The fine-tuning loop: the trainer's building blocks (batches, `NextItemObjective`, negative
samplers, `lr_factor`, progress bar) driven stage by stage with a parameter filter and an optional
EWC term.

`scalerec.train.train` runs a whole pretraining job from a `RunConfig`; fine-tuning needs three
things it does not take — a subset of trainable parameters that changes between stages, an extra
loss term, and model selection across stages — so this is a separate short loop over the same
parts, not a call into the trainer. Loss: every position is a target; K negatives shared by the
batch, drawn from the *target* domain's popularity, with logQ correction and hit masking. The
objective and its log-q table are built once per loop (`SampledLoss`), not per batch.
"""

from __future__ import annotations

import copy
import hashlib
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from scalerec import device as dev
from scalerec import runlog
from scalerec.train.negatives import NegativeSampler
from scalerec.train.objective import NextItemObjective
from scalerec.train.padded import Batch, TrainBatches
from scalerec.train.schedule import lr_factor
from scalerec.transfer.ewc import EWCPenalty
from scalerec.transfer.strategies import Stage, apply_stage

if TYPE_CHECKING:
    from scalerec.model.recommender import SequentialRecommender


class SampledLoss:
    """Mean sampled-softmax loss of a batch ([B, T] int64 inputs/targets) through the trainer's
    `NextItemObjective` (logQ from the sampler, hits masked). Built once: the objective and the
    catalog's log-q table do not change between batches."""

    def __init__(
        self,
        model: SequentialRecommender,
        sampler: NegativeSampler,
        n_negatives: int,
        generator: torch.Generator,
    ) -> None:
        device = next(model.parameters()).device
        logq = sampler.log_q(torch.arange(model.n_items + 1, device=device))
        self.objective = NextItemObjective(model, loss="sampled", targets="all", logq_table=logq)
        self.sampler, self.k, self.gen = sampler, n_negatives, generator

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        neg_ids, _ = self.sampler.sample((self.k,), self.gen)
        return self.objective(inputs, targets, neg_ids) / (targets > 0).sum().clamp(min=1)


@dataclass
class LoopSettings:
    """Knobs of the loop that do not depend on the strategy."""

    n_negatives: int
    weight_decay: float
    schedule: Literal["cosine", "onecycle", "constant"]
    warmup_frac: float
    patience: int
    device: str
    seed: int
    precision: str = "auto"
    progress: bool = False
    """Rich progress bar on a terminal; otherwise one line per epoch (loss, valid NDCG@10)."""
    min_epochs: int = 0
    """Early stopping never ends the last stage before this many of its epochs."""
    max_minutes: float | None = None
    """Wall-clock budget: after the first validation past it, stop as if early-stopped (best weights,
    `stopped_by_time`), so a time-boxed job on a shared GPU ends with a result instead of being killed.
    Unlike early stopping it may cut an unfreezing stage short: the clock is the harder limit."""
    resume_path: str | None = None
    """Where the loop leaves its state when the clock stops it, and continues from when that file exists:
    a time-boxed run resumed in a later job trains exactly as one uninterrupted run would (same batches,
    negatives, optimizer moments, early-stopping counter), so runs cut at different points of a shared
    GPU's load still end like-for-like. Deleted once the run ends any other way."""


@dataclass
class LoopResult:
    """What the loop did: steps, targets, wall time, the validation curve and the best epoch."""

    steps: int = 0
    targets_seen: int = 0
    wall_time_s: float = 0.0
    best_epoch: int = -1
    best_valid: float = float("-inf")
    curve: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    stopped_by_time: bool = False
    best_state: dict[str, Any] | None = field(default=None, repr=False)  # while the loop runs


@dataclass
class _Epoch:
    """What one epoch needs besides the model: the batch stream, loss pieces, optimizer, schedule."""

    stream: Iterator[Batch]
    n_batches: int
    loss: SampledLoss
    settings: LoopSettings
    ewc: EWCPenalty | None
    bar: runlog.ProgressBar
    deadline: float | None = None
    """`time.perf_counter()` after which the loop ends at its next validation (None = no limit)."""


def _train_epoch(model: SequentialRecommender, ctx: _Epoch, opt: torch.optim.Optimizer, stage: Stage, e: int,
                 result: LoopResult) -> float:
    """One pass over the batches of stage `stage` (epoch `e` of it); returns the mean training loss."""
    device = torch.device(ctx.settings.device)
    amp = dev.autocast_dtype(device, ctx.settings.precision)
    total = max(1, ctx.n_batches * stage.epochs)
    warmup = int(ctx.settings.warmup_frac * total)
    model.train()
    loss_sum = torch.zeros((), device=device)  # on device: no host sync per step
    for i in range(ctx.n_batches):
        for g in opt.param_groups:
            g["lr"] = stage.lr * lr_factor(ctx.settings.schedule, e * ctx.n_batches + i, total, warmup)
        batch = next(ctx.stream)
        with dev.autocast(device, amp):
            loss = ctx.loss(batch.inputs, batch.targets)
        if ctx.ewc is not None:
            loss = loss + ctx.ewc(model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach()
        result.steps += 1
        result.targets_seen += batch.n_targets
        ctx.bar.advance(result.steps)  # no sync: the bar redraws with its ETA on its own clock
    return float(loss_sum) / max(1, ctx.n_batches)


def run_stages(
    model: SequentialRecommender,
    stages: tuple[Stage, ...],
    batches: TrainBatches,
    sampler: NegativeSampler,
    validate: Callable[[SequentialRecommender], float],
    settings: LoopSettings,
    ewc: EWCPenalty | None = None,
) -> LoopResult:
    """Train `stages` in order; after every epoch score `validate(model)` (higher = better) and keep
    the best weights, which are loaded back at the end. Early stopping (`patience` epochs without
    improvement, 0 = off, not before `min_epochs`) applies within the last stage only, so no unfreezing
    stage is skipped."""
    result = LoopResult()
    initial = copy.deepcopy(model.state_dict())
    gen = torch.Generator(device=settings.device).manual_seed(settings.seed)
    origin = _digest(initial) if settings.resume_path else ""
    at = _resume(settings.resume_path, stages, settings, model, batches, gen, result, origin)
    total = len(batches) * sum(s.epochs for s in stages)
    bar = runlog.ProgressBar(total, settings.progress, label="finetune")
    start, before = time.perf_counter(), result.wall_time_s
    deadline = None if settings.max_minutes is None else start + 60 * settings.max_minutes
    ctx = _Epoch(batches.batches(), len(batches), SampledLoss(model, sampler, settings.n_negatives, gen),
                 settings, ewc, bar, deadline)
    cut: _Cut | None = None
    try:
        for s_idx, stage in enumerate(stages):
            if s_idx < at.stage:
                continue
            here = at if s_idx == at.stage else _Cut(s_idx)
            cut = _run_stage(model, ctx, stage, validate, result, s_idx == len(stages) - 1, here)
            if result.stopped_early or result.stopped_by_time:
                break
    finally:
        bar.close()
    result.wall_time_s = before + time.perf_counter() - start
    if settings.resume_path:
        if result.stopped_by_time and cut is not None:
            _save_resume(settings.resume_path, stages, settings, model, batches, gen, result, cut, origin)
        else:
            Path(settings.resume_path).unlink(missing_ok=True)
    model.load_state_dict(result.best_state or initial)
    result.best_state = None
    for p in model.parameters():
        p.requires_grad_(True)
    return result


@dataclass
class _Cut:
    """Where a stage stands: its index, the next epoch to train, the epochs without improvement, and the
    optimizer's state (None: a fresh optimizer)."""

    stage: int = 0
    epoch: int = 0
    bad: int = 0
    opt: dict[str, Any] | None = None


def _digest(weights: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the weights a run starts from, so a saved state is continued only from the same start (a
    pretrained checkpoint that changed since, e.g. an extended pretraining run, means starting over)."""
    h = hashlib.sha256()
    for name in sorted(weights):
        t = weights[name].detach().to("cpu").contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _fingerprint(stages: tuple[Stage, ...], settings: LoopSettings, origin: str) -> str:
    """What a saved state must match to be continued: the stages, the knobs that shape training and the
    starting weights (`_digest`)."""
    return repr([(s.name, s.epochs, s.lr) for s in stages]) + repr(
        (settings.n_negatives, settings.weight_decay, settings.schedule, settings.warmup_frac,
         settings.patience, settings.seed, settings.min_epochs, origin))


def _save_resume(path: str, stages: tuple[Stage, ...], settings: LoopSettings, model: SequentialRecommender,
                 batches: TrainBatches, gen: torch.Generator, result: LoopResult, cut: _Cut,
                 origin: str) -> None:
    state = {
        "format_version": 1, "fingerprint": _fingerprint(stages, settings, origin), "stage": cut.stage,
        "epoch": cut.epoch, "bad": cut.bad, "opt": cut.opt, "model": model.state_dict(),
        "best_state": result.best_state, "batches": batches.state_dict(), "gen": gen.get_state(),
        "torch_rng": torch.get_rng_state(),  # dropout draws from the global generators
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "result": {"steps": result.steps, "targets_seen": result.targets_seen,
                   "wall_time_s": result.wall_time_s, "best_epoch": result.best_epoch,
                   "best_valid": result.best_valid, "curve": result.curve},
    }
    tmp = Path(f"{path}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _resume(path: str | None, stages: tuple[Stage, ...], settings: LoopSettings, model: SequentialRecommender,
            batches: TrainBatches, gen: torch.Generator, result: LoopResult, origin: str) -> _Cut:
    """Restore a state left by `_save_resume` into the model, stream, generator and `result`; return where
    to continue (the start when there is none, or it belongs to other stages, settings or starting
    weights)."""
    if not path or not Path(path).is_file():
        return _Cut()
    state = torch.load(path, map_location="cpu", weights_only=False)  # the optimizer moves its own
    if state.get("fingerprint") != _fingerprint(stages, settings, origin):
        warnings.warn(f"{path}: saved by a run with other stages, settings or starting weights; "
                      "starting over", stacklevel=2)
        return _Cut()
    model.load_state_dict(state["model"])
    batches.load_state_dict(state["batches"])
    gen.set_state(state["gen"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    for k, v in state["result"].items():
        setattr(result, k, v)
    result.best_state = state["best_state"]
    return _Cut(state["stage"], state["epoch"], state["bad"], state["opt"])


def _run_stage(model: SequentialRecommender, ctx: _Epoch, stage: Stage,
               validate: Callable[[SequentialRecommender], float],
               result: LoopResult, last: bool, at: _Cut) -> _Cut | None:
    """Epochs of one stage from `at`, validating after each and keeping the best weights in `result`.
    Early stopping (`patience` epochs without improvement) applies within the last stage only. Returns
    where the stage stands when the clock stopped it (None otherwise)."""
    opt = torch.optim.AdamW(apply_stage(model, stage), lr=stage.lr, weight_decay=ctx.settings.weight_decay)
    if at.opt is not None:
        opt.load_state_dict(at.opt)
    bad = at.bad
    for e in range(at.epoch, stage.epochs):
        ctx.bar.phase(stage.name)
        loss = _train_epoch(model, ctx, opt, stage, e, result)
        ctx.bar.phase("valid")
        score = validate(model)
        point = {"epoch": len(result.curve), "stage": stage.name, "train/loss": loss,
                 "valid/ndcg@10": score, "targets_seen": result.targets_seen}
        result.curve.append(point)
        ctx.bar.update(result.steps, f"loss {loss:.4f} | valid NDCG@10 {score:.4f}")
        if not ctx.bar.enabled:
            seen = runlog.fmt_count(result.targets_seen)
            ctx.bar.print(f"{stage.name} epoch {e + 1}/{stage.epochs} | step {result.steps} | "
                          f"targets {seen} | train/loss {loss:.4g} | valid/ndcg@10 {score:.4g}")
        if score > result.best_valid:
            result.best_valid, result.best_epoch = score, len(result.curve) - 1
            result.best_state = copy.deepcopy(model.state_dict())
            bad = 0
        else:
            bad += 1
        patient = bad < ctx.settings.patience or e + 1 < ctx.settings.min_epochs
        if last and ctx.settings.patience and not patient:
            result.stopped_early = True
            break
        finished = last and e + 1 == stage.epochs  # the run ends here anyway: not a cut
        if ctx.deadline is not None and time.perf_counter() > ctx.deadline and not finished:
            result.stopped_by_time = True
            if e + 1 == stage.epochs:  # the stage is complete: a resumed run starts the next one
                return _Cut(at.stage + 1)
            return _Cut(at.stage, e + 1, bad, opt.state_dict())
    return None

