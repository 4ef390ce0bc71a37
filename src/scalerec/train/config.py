"""Typed configuration of one training run, and the `paper` recipe preset.

`RunConfig` is resolved once (`resolve_run_config`: size ladder < recipe preset < TOML < `--set`),
written to the run dir as `config.toml` before step 0, and is all a run needs to be repeated.
The `paper` recipe reproduces the study's logged runs (PAPER.md): last-position target,
per-sample popularity negatives with logQ, Adam lr 1e-4 one-cycle, weight decay 1e-5, batch 128,
fp32, no clipping — and, through `scalerec.model.sizes.PRESETS["paper"]`, post-LN blocks, FFN =
hidden, sum pooling of title + brand, dropout 0.5. Our default differs on each of those points.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scalerec.config import from_dict, merge, parse_overrides, read_toml
from scalerec.errors import UserError
from scalerec.model.config import ModelConfig


@dataclass
class DataConfig:
    """Where the training data lives."""

    dataset: str = ""
    """Dataset dir written by `scalerec data prepare` (or one of its `subsets/<label>`)."""
    tokens: str | None = None
    """Token table dir written by `scalerec text train` (required by the text item encoder)."""
    max_len: int = 50
    """Longest input sequence; longer histories are cut into windows (training) or truncated (eval)."""
    train_users: int | None = None
    """World datasets only (`scalerec.data.world`): cap the streamed training users (epochs then
    repeat them); None = an endless stream where no example repeats."""

    def __post_init__(self) -> None:
        if self.max_len < 1:
            raise ValueError(f"data.max_len must be >= 1, got {self.max_len}")


@dataclass
class TrainConfig:
    """Optimisation recipe and run length."""

    targets: Literal["all", "last"] = "all"
    """Supervise every position ("all") or, per prefix sample, only the last one ("last", paper)."""
    loss: Literal["sampled", "full", "bce"] = "sampled"
    """Sampled softmax (logQ + hit masking), exact full-catalog softmax, or BCE with one negative."""
    negatives: int = 1000
    """Negatives per step (shared) or per target (per-sample)."""
    sampler: Literal["popularity", "uniform", "in_batch"] = "popularity"
    """Distribution of negatives: training popularity^alpha, uniform, or targets of the same batch."""
    sampler_alpha: float = 1.0
    """Exponent of the popularity sampler (0 = uniform, 1 = proportional to counts + 1)."""
    shared_negatives: bool = True
    """One set of negatives for the whole batch (one matmul) instead of per target (paper)."""
    logq: bool = True
    """Subtract log q(item) from logits (sampling-bias correction)."""
    temperature: float = 1.0
    """Logits are divided by this."""
    batch_size: int = 128
    """Sequences (units) per optimizer step across all devices and accumulation micro-steps."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (batch_size must be divisible by grad_accum x world size)."""
    optimizer: Literal["adamw", "adam"] = "adamw"
    """AdamW (decoupled weight decay; fused on CUDA) or Adam with L2 weight decay (paper)."""
    lr: float = 1e-3
    """Peak learning rate."""
    weight_decay: float = 0.01
    """Weight decay (applied to matrices only for AdamW; to everything for Adam, as RecBole)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    """Adam betas."""
    schedule: Literal["cosine", "onecycle", "constant", "wsd"] = "cosine"
    """LR schedule: linear warmup + cosine decay, one-cycle (paper), constant, or warmup-stable-decay."""
    warmup: float = 0.05
    """Warmup length as a fraction of the total steps (cosine and wsd schedules)."""
    warmup_steps: int | None = None
    """Warmup length in steps (overrides `warmup`; wsd branches need the same warmup as their trunk)."""
    decay_steps: int | None = None
    """wsd: steps of the final decay (None = 20% of the run)."""
    min_lr_ratio: float = 0.1
    """Final LR of the cosine schedule as a fraction of the peak."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 = off, paper)."""
    layer_lr_decay: float = 1.0
    """Per-layer LR: block i gets lr * decay^(n_layers-1-i), embeddings decay^n_layers (1 = off)."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """Autocast dtype: auto = bf16 on CUDA, fp32 on CPU."""
    compile: bool = False
    """Wrap the training step in torch.compile."""
    compile_mode: Literal[
        "default", "max-autotune-no-cudagraphs", "max-autotune", "reduce-overhead"] = "default"
    """torch.compile mode: max-autotune-no-cudagraphs times Triton matmul templates against cuBLAS and
    may fuse pointwise epilogues (GELU) into them, at minutes of extra compile time."""
    distinct_items: bool = True
    """Text encoder, all-position targets: encode each distinct item of a batch once (same loss,
    far less token-embedding work; costs one device sync per step)."""
    epochs: float | None = 10.0
    """Run length in epochs (lowest precedence)."""
    max_steps: int | None = None
    """Run length in optimizer steps (overrides epochs)."""
    max_targets: int | None = None
    """Run length in training targets (overrides max_steps)."""
    max_flops: float | None = None
    """Run length in analytic training FLOPs (overrides everything)."""
    log_every: int = 50
    """Steps between log lines (the only host syncs of the loop)."""
    stop_after_steps: int | None = None
    """Stop early *without finishing* after this many steps, leaving a resumable run (tests)."""

    def __post_init__(self) -> None:
        for name in ("negatives", "batch_size", "grad_accum", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.temperature <= 0:
            raise ValueError("train.lr and train.temperature must be > 0")
        if any(v is not None and v < 0 for v in (self.warmup_steps, self.decay_steps)):
            raise ValueError("train.warmup_steps and train.decay_steps must be >= 0")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"train.warmup must be a fraction in [0, 1), got {self.warmup}")
        if len(self.betas) != 2:
            raise ValueError(f"train.betas must have 2 values, got {self.betas}")
        if all(v is None for v in (self.epochs, self.max_steps, self.max_targets, self.max_flops)):
            raise ValueError("set one of train.epochs, train.max_steps, train.max_targets, train.max_flops")


@dataclass
class EvalConfig:
    """Validation during training and the final test."""

    ks: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 50])
    """Cut-offs of NDCG/HR/MRR."""
    every_steps: int = 0
    """Steps between validations (0 = once per epoch)."""
    batch_size: int = 1024
    """Users per forward pass during evaluation."""
    max_users: int | None = None
    """Validate on a fixed random subset of this many users (None = all); test always uses all."""
    patience: int = 5
    """Stop after this many validations without a better NDCG@10 (0 = never stop early)."""
    mask_seen: bool = False
    """Remove items of the history from the ranking."""

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"eval.ks must be a non-empty list of cut-offs >= 1, got {self.ks}")
        if self.batch_size < 1 or self.every_steps < 0 or self.patience < 0:
            raise ValueError("eval.batch_size must be >= 1, eval.every_steps and eval.patience >= 0")
        if self.max_users is not None and self.max_users < 1:
            raise ValueError(f"eval.max_users must be >= 1 or unset, got {self.max_users}")


@dataclass
class RunMeta:
    """Where the run is written and how it is tracked."""

    out: str = "runs"
    """Runs root; the run dir is <out>/<name>."""
    name: str = ""
    """Run name (default: the run id, a hash of the resolved config)."""
    seed: int = 0
    """Seed of model init, data order, negatives and dropout."""
    tracking_uri: str | None = None
    """MLflow tracking URI (None = sqlite:///<out>/mlflow.db; "off" = no MLflow)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Training device (auto = CUDA when present)."""
    progress: bool = True
    """Show a Rich progress bar."""


@dataclass
class RunConfig:
    """Everything one training run needs."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunMeta = field(default_factory=RunMeta)
    model_size: str | None = None
    """Ladder entry the model section started from (scalerec.model.sizes.SIZES)."""
    recipe: Literal["default", "paper"] = "default"
    """Recipe preset the config started from."""


def _paper_train(size: str | None) -> dict[str, Any]:
    from scalerec.model.sizes import PAPER_NEGATIVES

    return {
        "targets": "last",
        "loss": "sampled",
        "shared_negatives": False,
        "sampler": "popularity",
        "logq": True,
        "negatives": PAPER_NEGATIVES.get(size or "", 1000),
        "optimizer": "adam",
        "lr": 1e-4,
        "schedule": "onecycle",
        "weight_decay": 1e-5,
        "batch_size": 128,
        "precision": "fp32",
        "grad_clip": 0.0,
    }


def preset_base(size: str | None, recipe: str) -> dict[str, Any]:
    """The config dict a size + recipe start from (below TOML and --set)."""
    from scalerec.model import sizes

    if recipe not in ("default", "paper"):
        raise UserError(f"recipe: {recipe!r} is not one of 'default', 'paper'")
    model_preset = None if recipe == "default" else recipe
    if size is not None:
        try:
            model = dataclasses.asdict(sizes.model_config(size, preset=model_preset))
        except ValueError as exc:
            raise UserError(f"model_size: {exc}") from None
    else:
        model = dict(sizes.PRESETS.get(model_preset or "default", {}))
    base: dict[str, Any] = {"model": model, "model_size": size, "recipe": recipe}
    if recipe == "paper":
        base["train"] = _paper_train(size)
    return base


def resolve_run_config(
    toml: str | Path | None = None,
    overrides: list[str] | None = None,
    size: str | None = None,
    recipe: str | None = None,
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a run config: defaults < size ladder < recipe < `base` < TOML < `--set` overrides."""
    user = merge(base or {}, read_toml(toml) if toml is not None else {})
    user = merge(user, parse_overrides(overrides))
    size = size or user.get("model_size")
    recipe = recipe or user.get("recipe") or "default"
    data = merge(preset_base(size, recipe), user)
    data["model_size"], data["recipe"] = size, recipe
    return from_dict(RunConfig, data)
