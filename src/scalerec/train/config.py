"""Typed configuration of one training run, and the `paper` recipe preset.

`RunConfig` is resolved once (`resolve_run_config`: size ladder < recipe preset < TOML < `--set` <
flags), written to the run dir as `config.toml` before step 0, and is all a run needs to be repeated.
The `paper` recipe reproduces the study's logged runs (docs/design/study.md): last-position target,
per-sample popularity negatives with logQ, Adam lr 1e-4 one-cycle, weight decay 1e-5, batch 128,
fp32, no clipping — and, through `scalerec.model.sizes.PRESETS["paper"]`, post-LN blocks, FFN =
hidden, sum pooling of title + brand, dropout 0.5. Our default differs on each of those points.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scalerec.config import check_ranges, merge, resolve
from scalerec.errors import UserError
from scalerec.model import sizes
from scalerec.model.config import ModelConfig


@dataclass
class DataConfig:
    """Where the training data lives."""

    dataset: str = ""
    """Dataset dir written by `scalerec data prepare` (or one of its `subsets/<label>`)."""
    tokens: str | None = None
    """Token table dir written by `scalerec text train` (required by the text and hybrid item encoders)."""
    max_len: int = field(default=50, metadata={"range": "[1, inf)"})
    """Longest input sequence; longer histories are cut into windows (training) or truncated (eval)."""
    train_users: int | None = field(default=None, metadata={"range": "[1, inf)"})
    """World datasets only (`scalerec.data.ingest.world`): cap the streamed training users (epochs then
    repeat them); None = an endless stream where no example repeats."""
    train_fraction: float = field(default=1.0, metadata={"range": "(0, 1]"})
    """Train on only the first this-fraction of the training users, in one fixed seeded order (nested:
    a smaller fraction's users are a subset of a larger one's; `scalerec.data.read.fractions`).
    Validation, test and the catalog stay whole, and popularity (negatives, logQ) is counted on the
    kept users, so runs at different fractions differ only in training data (D of a scaling sweep).
    At 1 the run id is that of a config without this field."""

    def __post_init__(self) -> None:
        check_ranges(self, "data")


@dataclass
class TrainConfig:
    """Optimisation recipe and run length."""

    targets: Literal["all", "last"] = "all"
    """Supervise every position ("all") or, per prefix sample, only the last one ("last", paper)."""
    loss: Literal["auto", "sampled", "full", "bce"] = "auto"
    """Sampled softmax (logQ + hit masking), exact full-catalog softmax, or BCE with one negative.
    "auto" = full when the catalog has at most `full_softmax_max_items` items, else sampled; resolved
    from the dataset when the run starts and written resolved to config.toml (on ml-100k's 1,682
    items the sampled default tied most-popular after 8 epochs)."""
    full_softmax_max_items: int = field(default=100_000, metadata={"range": "[1, inf)"})
    """Largest catalog for which loss="auto" picks the exact full softmax."""
    negatives: int = field(default=1000, metadata={"range": "[1, inf)"})
    """Negatives per step (shared) or per target (per-sample)."""
    sampler: Literal["popularity", "uniform", "in_batch"] = "popularity"
    """Distribution of negatives: training popularity^alpha, uniform, or targets of the same batch."""
    sampler_alpha: float = 1.0
    """Exponent of the popularity sampler (0 = uniform, 1 = proportional to counts + 1)."""
    shared_negatives: bool = True
    """One set of negatives for the whole batch (one matmul) instead of per target (paper)."""
    logq: bool = True
    """Subtract log q(item) from logits (sampling-bias correction)."""
    temperature: float = field(default=1.0, metadata={"range": "(0, inf)"})
    """Logits are divided by this."""
    batch_size: int = field(default=128, metadata={"range": "[1, inf)"})
    """Sequences (units) per optimizer step across all devices and accumulation micro-steps."""
    grad_accum: int = field(default=1, metadata={"range": "[1, inf)"})
    """Micro-batches per optimizer step (batch_size must be divisible by grad_accum x world size)."""
    optimizer: Literal["adamw", "adam"] = "adamw"
    """AdamW (decoupled weight decay; fused on CUDA) or Adam with L2 weight decay (paper)."""
    lr: float = field(default=1e-3, metadata={"range": "(0, 1]"})
    """Peak learning rate."""
    weight_decay: float = field(default=0.01, metadata={"range": "[0, inf)"})
    """Weight decay (applied to matrices only for AdamW; to everything for Adam, as RecBole)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98], metadata={"range": "[0, 1)"})
    """Adam betas."""
    schedule: Literal["cosine", "onecycle", "constant", "wsd"] = "cosine"
    """LR schedule: linear warmup + cosine decay, one-cycle (paper), constant, or warmup-stable-decay."""
    warmup: float = field(default=0.05, metadata={"range": "[0, 1)"})
    """Warmup length as a fraction of the total steps (cosine and wsd schedules)."""
    warmup_steps: int | None = field(default=None, metadata={"range": "[0, inf)"})
    """Warmup length in steps (overrides `warmup`; wsd branches need the same warmup as their trunk)."""
    decay_steps: int | None = field(default=None, metadata={"range": "[0, inf)"})
    """wsd: steps of the final decay (None = 20% of the run)."""
    min_lr_ratio: float = field(default=0.1, metadata={"range": "[0, 1]"})
    """Final LR of the cosine schedule as a fraction of the peak."""
    grad_clip: float = field(default=1.0, metadata={"range": "[0, inf)"})
    """Clip the global gradient norm to this (0 = off, paper)."""
    layer_lr_decay: float = field(default=1.0, metadata={"range": "(0, 1]"})
    """Per-layer LR: block i gets lr * decay^(n_layers-1-i), embeddings decay^n_layers (1 = off)."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """Autocast dtype: auto = bf16 on CUDA, fp32 on CPU."""
    logits_precision: Literal["fp32", "autocast"] = "fp32"
    """dtype of the loss's logits matmul (`hidden @ items.T`) under bf16 autocast: fp32 keeps the
    item differences that a trained model's large common logit offset pushes below bf16's step
    (bf16 logits stalled the Beauty text model's training loss at ~7.10, BENCHMARKS.md); "autocast"
    runs it in bf16 (the behaviour before 2026-12-05: slightly faster, for reproducing old runs)."""
    z_loss: float | None = field(default=None, metadata={"range": "[0, inf)"})
    """Weight of the z-loss `z · logsumexp(logits)²` added per target (PaLM, Chowdhery et al. 2022; 1e-4
    there). Softmax ignores a common offset of a target's logits, so nothing holds it in place, and in
    packed bf16 runs it drifted (the Beauty text model's mean logit grew from ~1 to ~300 while padded and
    fp32 runs stayed near 1) and the training loss stalled; the penalty pins it near −log(catalog).
    None (default) = auto, decided when the run starts and recorded in its config.toml: `AUTO_Z_LOSS`
    (1e-4) where a text or hybrid model trains on packed batches under bf16/fp16 autocast with a softmax
    loss, else 0 (packed ID-SASRec kept padded's accuracy without it).
    Why there only: on one H100, 3 seeds each, packed bf16 with 1e-4 beat packed bf16 without it on
    validation NDCG@10 in every seed (+0.0030 on average) and sat 0.0023 [−0.0064, +0.0019] below padded on
    test, where packed bf16 without it sat 0.0044 [−0.0081, −0.0006] below (BENCHMARKS.md, packing); padded
    and fp32 runs never drifted and were not tried with it. 0 = off; not with BCE."""
    compile: bool = False
    """Wrap the training step in torch.compile."""
    compile_mode: Literal[
        "default", "max-autotune-no-cudagraphs", "max-autotune", "reduce-overhead"] = "default"
    """torch.compile mode: max-autotune-no-cudagraphs times Triton matmul templates against cuBLAS and
    may fuse pointwise epilogues (GELU) into them, at minutes of extra compile time. reduce-overhead replays
    the compiled step as CUDA graphs, for small models whose step is kernel launches: on one H100 the Sports
    ID-SASRec step ran 1.94x (packed) and 2.01x (padded) faster (BENCHMARKS.md, step overhead). Whole runs
    under it have not run on a GPU yet (a GPU test and an accuracy job are written for that)."""
    packing: Literal["auto", "on", "off", "unpacked"] = "auto"
    """Padding-free batches (targets="all"): pack several users' windows into each row, positions
    restarting per window and attention kept inside it (same loss and gradients as padded rows);
    a batch then holds about batch_size windows in fewer rows. "auto" packs when real targets would
    fill < 75% of the padded slots (real histories: Beauty/Games ~12%), "off" pads every window
    to max_len (as before), "on" always packs. See `scalerec.train.batches`. Under bf16 a packed text or
    hybrid model gets a z-loss by default (`z_loss`): without it the Beauty text model trained packed
    ended 0.0044 NDCG@10 below padded (3 seeds, H100) as its logits' common offset drifted; with it,
    0.0023 below (not significant). Use "off" (or precision fp32) to match padded runs exactly.
    "unpacked" is a diagnostic control: the packed stream's batches laid out padded (`UnpackedBatches`)."""
    distinct_items: bool = True
    """Text and hybrid encoders, all-position targets: encode each distinct item of a batch once (same loss,
    far less token-embedding work; costs one device sync per step)."""
    epochs: float | None = field(default=10.0, metadata={"range": "(0, inf)"})
    """Run length in epochs (lowest precedence)."""
    max_steps: int | None = field(default=None, metadata={"range": "[1, inf)"})
    """Run length in optimizer steps (overrides epochs)."""
    max_targets: int | None = field(default=None, metadata={"range": "[1, inf)"})
    """Run length in training targets (overrides max_steps)."""
    max_flops: float | None = field(default=None, metadata={"range": "(0, inf)"})
    """Run length in analytic training FLOPs (overrides everything)."""
    log_every: int = field(default=0, metadata={"range": "[0, inf)"})
    """Steps between log lines (host syncs of the loop); 0 = auto: about 10 per epoch, at most 50
    steps apart. Resolved when the run starts."""
    log_seconds: float = field(default=30.0, metadata={"range": "(0, inf)"})
    """Also log when this many seconds passed since the last log line, so a slow run prints its
    loss at a steady rate (single process only: under DDP every rank must agree on when to sync)."""
    max_minutes: float | None = field(default=None, metadata={"range": "(0, inf)"})
    """Wall-clock budget: after the first validation past this many minutes of training, stop and
    finish as if early-stopped (best checkpoint, test, final.json with `stopped_by_time`), so a
    time-boxed job (a shared GPU, a CI slot) ends with a result instead of being killed."""
    save_state_s: float | None = field(default=60.0, metadata={"range": "[0, inf)"})
    """Seconds between writes of the resumable state (`state.pt`, optimizer and RNG included, and the
    best weights found since the last write) at validation points, and at log points in between (a run
    that validates only at its end still writes it on this timer); 0 = at every validation, None =
    only where the run stops. The last step, an early or time stop and `stop_after_steps` always
    write it, so a run killed mid-way resumes (bit-for-bit) from state at most this old. Measured on
    2 CPU cores for the Beauty ID recipe (benchmarks/step_overhead.py): one state.pt write costs
    0.5 model steps and a best-weights write 0.26; a GPU step is far shorter, so per-epoch writes
    weigh more there."""
    stop_after_steps: int | None = field(default=None, metadata={"range": "[0, inf)"})
    """Stop early *without finishing* after this many steps, leaving a resumable run (tests)."""

    def __post_init__(self) -> None:
        check_ranges(self, "train")
        if len(self.betas) != 2:
            raise ValueError(f"train.betas must have 2 values, got {self.betas}")
        if all(v is None for v in (self.epochs, self.max_steps, self.max_targets, self.max_flops)):
            raise ValueError("set one of train.epochs, train.max_steps, train.max_targets, train.max_flops")
        if self.z_loss and self.loss == "bce":
            raise ValueError("train.z_loss needs a softmax loss (full, sampled or auto), not bce")


@dataclass
class EvalConfig:
    """Validation during training and the final test."""

    ks: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 50], metadata={"range": "[1, inf)"})
    """Cut-offs of NDCG/HR/MRR."""
    every_steps: int = field(default=0, metadata={"range": "[0, inf)"})
    """Steps between validations (0 = once per epoch)."""
    batch_size: int = field(default=1024, metadata={"range": "[1, inf)"})
    """Users per forward pass during evaluation."""
    max_users: int | None = field(default=None, metadata={"range": "[1, inf)"})
    """Validate on a fixed random subset of this many users (None = all); test always uses all."""
    patience: int = field(default=5, metadata={"range": "[0, inf)"})
    """Stop after this many validations without a better `monitor` value (0 = never stop early)."""
    monitor: str = "ndcg@10"
    """The validation metric that picks the best checkpoint and stops the run: "loss" (lower is better),
    "mrr", or ndcg/hr/mrr@k with k in `ks`. Why not always NDCG@10: a study that fits or compares
    validation loss should stop and select on loss too; stopped on NDCG@10, a run whose NDCG peaks by
    chance in its first validations ends there under-trained, with a loss that says little (pooled_v3,
    docs/results/pooled_v3/README.md)."""
    mask_seen: bool = False
    """Remove items of the history from the ranking."""
    paper_sampled: int = field(default=0, metadata={"range": "[0, inf)"})
    """Also score the test split by the scaling paper's own protocol: the target against this many
    uniform items drawn once per 128 users (0 = off; 10000 in the paper). Written to final.json as
    `test.paper_sampled<N>/ndcg@5` etc., beside (never instead of) the full-ranking metrics."""

    def __post_init__(self) -> None:
        check_ranges(self, "eval")
        if not self.ks:
            raise ValueError("eval.ks must list at least one cut-off")
        # None: how `build.run_id` hashes the default (unset, as before the field existed)
        if self.monitor is not None and not self._monitor_is_computed():
            raise ValueError(
                f"eval.monitor = {self.monitor!r}: use 'loss', 'mrr' or ndcg/hr/mrr@k "
                f"with k in eval.ks {self.ks}"
            )

    def _monitor_is_computed(self) -> bool:
        """Whether validation reports `monitor` (`eval.metrics`: ndcg/hr/mrr@k for k in ks, mrr, loss)."""
        name, _, k = self.monitor.partition("@")
        at_k = name in ("ndcg", "hr", "mrr") and k.isdigit() and int(k) in self.ks
        return self.monitor in ("loss", "mrr") or at_k


@dataclass
class RunMeta:
    """Where the run is written and how it is tracked."""

    out: str = "runs"
    """Runs root; the run dir is <out>/<name>."""
    name: str = ""
    """Run name (default: the run id, a hash of the resolved config)."""
    seed: int = field(default=0, metadata={"range": "[0, inf)"})
    """Seed of model init, data order, negatives and dropout."""
    tracking_uri: str | None = None
    """MLflow tracking URI (None = the file store <out>/mlruns, whatever MLflow flavour is
    installed; "off" = no MLflow)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Training device (auto = CUDA when present)."""
    progress: bool = True
    """Show a Rich progress bar (on a terminal; otherwise log lines are printed)."""
    tensorboard: bool = False
    """Also write TensorBoard event files to <run dir>/tensorboard (needs the tensorboard package)."""


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
    return {
        "targets": "last",
        "loss": "sampled",
        "shared_negatives": False,
        "sampler": "popularity",
        "logq": True,
        "negatives": sizes.PAPER_NEGATIVES.get(size or "", 1000),
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
    flags: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a run config with `scalerec.config.resolve`'s precedence: defaults < preset (size
    ladder < recipe < `base`) < TOML < `--set` overrides < `flags`.

    `size` and `recipe` are flags too (`--size`, `--recipe`): they beat a TOML's `model_size` /
    `recipe`, and whichever wins picks the preset.
    """
    flags = {**(flags or {}), "model_size": size, "recipe": recipe}

    def preset(user: dict[str, Any]) -> dict[str, Any]:
        chosen = merge(base or {}, user)
        return merge(preset_base(chosen.get("model_size"), chosen.get("recipe") or "default"), base or {})

    return resolve(RunConfig, preset=preset, toml=toml, overrides=overrides, flags=flags)
