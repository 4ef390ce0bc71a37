"""The fine-tuning loop: the trainer's public pieces (batches, sampled softmax, negatives, schedule)
driven stage by stage with a parameter filter and an optional EWC term.

`scalerec.train.train` runs a whole pretraining job from a `RunConfig`; fine-tuning needs three
things it does not take — a subset of trainable parameters that changes between stages, an extra
loss term, and model selection across stages — so this short loop reuses its building blocks
(`TrainBatches`, `NextItemObjective`, the negative samplers, `lr_factor`) instead of duplicating
the trainer. Loss: every position is a target; K negatives shared by the
batch, drawn from the *target* domain's popularity, with logQ correction and hit masking.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from scalerec import device as dev
from scalerec.train.negatives import NegativeSampler
from scalerec.train.objective import NextItemObjective
from scalerec.train.padded import Batch, TrainBatches
from scalerec.train.schedule import lr_factor
from scalerec.transfer.ewc import EWCPenalty
from scalerec.transfer.strategies import Stage, apply_stage

if TYPE_CHECKING:
    from scalerec.model.recommender import SequentialRecommender


def batch_loss(
    model: SequentialRecommender,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    sampler: NegativeSampler,
    n_negatives: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Mean sampled-softmax loss over the non-padding targets of one batch ([B, T] int64 each),
    computed by the trainer's `NextItemObjective` (logQ from the sampler, hits masked)."""
    device = inputs.device
    logq = sampler.log_q(torch.arange(model.n_items + 1, device=device))
    objective = NextItemObjective(model, loss="sampled", targets="all", logq_table=logq)
    neg_ids, _ = sampler.sample((n_negatives,), generator)
    return objective(inputs, targets, neg_ids) / (targets > 0).sum().clamp(min=1)


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


@dataclass
class _Epoch:
    """What one epoch needs besides the model: the batch stream, loss pieces, optimizer, schedule."""

    stream: Iterator[Batch]
    n_batches: int
    sampler: NegativeSampler
    gen: torch.Generator
    settings: LoopSettings
    ewc: EWCPenalty | None


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
            k = ctx.settings.n_negatives
            loss = batch_loss(model, batch.inputs, batch.targets, ctx.sampler, k, ctx.gen)
        if ctx.ewc is not None:
            loss = loss + ctx.ewc(model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach()
        result.steps += 1
        result.targets_seen += batch.n_targets
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
    improvement, 0 = off) applies within the last stage only, so no unfreezing stage is skipped."""
    result = LoopResult()
    best_state = copy.deepcopy(model.state_dict())
    gen = torch.Generator(device=settings.device).manual_seed(settings.seed)
    ctx = _Epoch(batches.batches(), len(batches), sampler, gen, settings, ewc)
    start = time.perf_counter()
    for s_idx, stage in enumerate(stages):
        opt = torch.optim.AdamW(apply_stage(model, stage), lr=stage.lr, weight_decay=settings.weight_decay)
        bad = 0
        for e in range(stage.epochs):
            loss = _train_epoch(model, ctx, opt, stage, e, result)
            score = validate(model)
            result.curve.append({"epoch": len(result.curve), "stage": stage.name, "train/loss": loss,
                                 "valid/ndcg@10": score, "targets_seen": result.targets_seen})
            if score > result.best_valid:
                result.best_valid, result.best_epoch = score, len(result.curve) - 1
                best_state = copy.deepcopy(model.state_dict())
                bad = 0
            else:
                bad += 1
            if s_idx == len(stages) - 1 and settings.patience and bad >= settings.patience:
                result.stopped_early = True
                break
    result.wall_time_s = time.perf_counter() - start
    model.load_state_dict(best_state)
    for p in model.parameters():
        p.requires_grad_(True)
    return result
