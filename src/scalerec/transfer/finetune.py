"""`finetune(cfg)`: pretrain once, fine-tune anywhere — one strategy on one target domain.

Follows the paper's fine-tuning protocol (Zivic et al., SIGIR 2024): the target domain's item text
is tokenized with the *pretrained* tokenizer (unknown pieces → [UNK], never an arbitrary id), the
popularity used for negatives is recomputed on the target's training split, and the model is
evaluated with full-catalog ranking. Beyond the paper it reports, for every strategy, cold-start
targets (never in the target's training interactions, scored from text alone), most-popular on
the same users, and the source-domain metric before and after fine-tuning (forgetting).
A hybrid (text + ID) model keeps its text encoder and gets a zero ID table for the target catalog
(its trained rows name source items), so zero-shot scores by text alone and fine-tuning learns the
target's ID rows; EWC and the forgetting measurement need a text model (the source's ID rows are
gone once the table is replaced).

Output dir: `transfer.json` (summary, read by `transfer_report`), `ranks.npz` (per-user test ranks
for paired comparisons), `tokens/` (the target token table), `model.safetensors` + `meta.json`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from scalerec import runlog
from scalerec.config import to_dict
from scalerec.errors import UserError
from scalerec.io import atomic_dir
from scalerec.model import SequentialRecommender
from scalerec.model.flops import flops_per_target
from scalerec.rundir import load_run, model_meta, save_weights
from scalerec.text import build_token_table
from scalerec.train import numerics
from scalerec.train.negatives import popularity_sampler
from scalerec.train.padded import TrainBatches
from scalerec.transfer import evaluation as ev
from scalerec.transfer.domain import Domain, _subsample, load_domain, with_fraction
from scalerec.transfer.ewc import EWCPenalty, diagonal_fisher
from scalerec.transfer.loop import LoopResult, LoopSettings, SampledLoss, run_stages
from scalerec.transfer.pretrained import entry
from scalerec.transfer.strategies import Plan, PlanSettings, StrategyName, make_plan

if TYPE_CHECKING:
    from scalerec.model.recommender import SequentialRecommender


@dataclasses.dataclass
class FinetuneConfig:
    """Settings of `scalerec finetune` (TOML keys or `--set key=value`)."""

    pretrained: str = ""
    """Pretrained run (`--from`): a run dir, or a run name under `pretrained_root` (see
    `scalerec pretrained`); must hold final.json, meta.json and model.safetensors."""
    pretrained_root: str = "runs"
    """Where `--from NAME` and `scalerec pretrained` look for complete training runs."""
    data: str = ""
    """Target dataset dir (`--data`), as written by `scalerec data prepare`."""
    out: str = ""
    """Output dir of this fine-tuning run ("" = a new unique dir under runs/finetune/). An existing
    fine-tuning output is replaced atomically; any other non-empty dir is refused."""
    target_fraction: float = dataclasses.field(default=1.0, metadata={"range": "(0, 1]"})
    """Train on this fraction of the target's training users (nested: a fixed user order, so 5% ⊂
    20% ⊂ 100%); validation and test always use every user."""
    strategy: StrategyName = "full"
    """zero-shot | scratch | id-scratch | full | freeze-transformer | only-embeddings | progressive | ewc."""
    epochs: int = dataclasses.field(default=10, metadata={"range": "[0, inf)"})
    """Epochs of the last (or only) stage."""
    stage_epochs: int = dataclasses.field(default=2, metadata={"range": "[0, inf)"})
    """Progressive unfreezing: epochs per partial stage."""
    freeze_embeddings: bool = False
    """Progressive unfreezing: keep token embeddings frozen throughout (the paper's setting; off by
    default, see `scalerec.transfer.strategies.Progressive`)."""
    lr: float | None = dataclasses.field(default=None, metadata={"range": "(0, 1]"})
    """Peak LR; unset = the strategy's default (`scalerec.transfer.strategies.DEFAULT_LR`)."""
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    """LR schedule within each stage (`scalerec.train.schedule.lr_factor`)."""
    warmup_frac: float = dataclasses.field(default=0.05, metadata={"range": "[0, 1)"})
    """Fraction of each stage's steps spent warming up (cosine schedule)."""
    weight_decay: float = dataclasses.field(default=0.0, metadata={"range": "[0, inf)"})
    """AdamW weight decay."""
    batch_size: int = dataclasses.field(default=128, metadata={"range": "[1, inf)"})
    """Sequences per batch (every position is a target)."""
    n_negatives: int = dataclasses.field(default=256, metadata={"range": "[1, inf)"})
    """Negatives shared by a batch, drawn from the target's training popularity^alpha."""
    neg_alpha: float = 1.0
    """Popularity exponent of the negative sampler (0 = uniform)."""
    patience: int = dataclasses.field(default=3, metadata={"range": "[0, inf)"})
    """Stop the last stage after this many epochs without a better validation NDCG@10 (0 = never)."""
    min_epochs: int = dataclasses.field(default=0, metadata={"range": "[0, inf)"})
    """Never stop the last stage early before this many of its epochs. Why: on a small target fraction an
    epoch is a few steps, and the first epochs are a plateau whose validation NDCG@10 (a handful of hits)
    is noise; with patience alone, a slow start is read as convergence (Office at 5%: full fine-tuning
    stopped at epoch 12, its loss still falling, its NDCG@10 at the zero-shot level)."""
    max_minutes: float | None = dataclasses.field(default=None, metadata={"range": "(0, inf)"})
    """Wall-clock budget of the training loop: after the first validation past it the run ends as if
    early-stopped (best weights, `stopped_by_time` in the summary), like `train.max_minutes`. It also
    leaves its state beside `out` (`resume_path`); the same command run again, capped or not, continues
    from there."""
    valid_max_users: int = dataclasses.field(default=5000, metadata={"range": "[1, inf)"})
    """Validation (model selection) uses at most this many users, a fixed seeded sample."""
    ewc_lambda: float = dataclasses.field(default=100.0, metadata={"range": "[0, inf)"})
    """EWC penalty weight λ in λ·Σ F(θ−θ*)² (paper: 100)."""
    ewc_batches: int = dataclasses.field(default=200, metadata={"range": "[0, inf)"})
    """Pretraining batches used to estimate the diagonal Fisher (paper: 3,000)."""
    forgetting: bool = True
    """Also evaluate on the source domain's test split before and after fine-tuning."""
    source_max_users: int = dataclasses.field(default=5000, metadata={"range": "[1, inf)"})
    """Source-domain evaluation uses at most this many test users (seeded sample)."""
    n_boot: int = dataclasses.field(default=1000, metadata={"range": "[0, inf)"})
    """Bootstrap resamples for confidence intervals (0 = no intervals)."""
    eval_batch_size: int = dataclasses.field(default=512, metadata={"range": "[1, inf)"})
    """Users per forward pass during evaluation."""
    seed: int = dataclasses.field(default=0, metadata={"range": "[0, inf)"})
    """Seed of batches, negatives and fresh weights."""
    device: str = "cpu"
    """Torch device."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """Autocast dtype of the training forward pass: auto = bf16 on CUDA, fp32 on CPU."""
    progress: bool = True
    """Rich progress bar with ETA on a terminal; otherwise one log line per epoch."""
    tracking_uri: str | None = None
    """MLflow store (None = <pretrained_root>/mlruns, the store training runs use; "off" = none)."""

    def __post_init__(self) -> None:
        for name in ("epochs", "stage_epochs", "ewc_batches", "patience", "min_epochs", "n_boot"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "n_negatives", "valid_max_users", "source_max_users", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup_frac < 1:
            raise ValueError(f"warmup_frac must be in [0, 1), got {self.warmup_frac}")
        if self.ewc_lambda < 0:
            raise ValueError(f"ewc_lambda must be >= 0, got {self.ewc_lambda}")
        if not 0 < self.target_fraction <= 1:
            raise ValueError(f"target_fraction must be in (0, 1], got {self.target_fraction}")

    def plan_settings(self) -> PlanSettings:
        return PlanSettings(self.epochs, self.stage_epochs, self.freeze_embeddings, self.lr)


def retokenize_target(cfg: FinetuneConfig, model_cfg: Any, pretrained_tokens: Path, out: Path) -> Path:
    """Token table of the target domain built with the pretrained tokenizer, into `out/tokens`."""
    tokenizer = pretrained_tokens / "tokenizer.json"
    if not tokenizer.is_file():
        raise UserError(f"pretrained tokenizer not found: {tokenizer}")
    max_lens = dict(model_cfg.field_max_len)
    build_token_table(cfg.data, out / "tokens", max_lens=max_lens, tokenizer_path=tokenizer)
    return out / "tokens"


@dataclasses.dataclass
class Pretrained:
    """The pretrained run as fine-tuning needs it."""

    model: SequentialRecommender
    run_dir: Path
    tokens_dir: Path | None
    source_dataset: Path | None


def load_pretrained(run_dir: str | Path, device: str) -> Pretrained:
    """Load a complete run dir through `scalerec.rundir.load_run` (meta.json decides, hashes checked)."""
    run_dir = Path(run_dir)
    if not (run_dir / "final.json").is_file():
        raise UserError(f"pretrained run is not complete: {run_dir / 'final.json'} is missing")
    loaded = load_run(run_dir, device=device)
    data_cfg = loaded.config.get("data", {})
    tokens = loaded.meta.get("tokens_dir") or data_cfg.get("tokens")
    dataset = loaded.meta.get("dataset_dir") or data_cfg.get("dataset")
    return Pretrained(loaded.model, run_dir, Path(tokens) if tokens else None,
                      Path(dataset) if dataset else None)


def fresh_model(model: SequentialRecommender, plan: Plan, n_items: int, seed: int) -> SequentialRecommender:
    """Same architecture with new random weights (`scratch`), or its ID-SASRec twin (`id-scratch`)."""
    encoder = plan.reinit_item_encoder or model.cfg.item_encoder
    mcfg = dataclasses.replace(model.cfg, item_encoder=encoder, n_items=n_items)
    torch.manual_seed(seed)
    return SequentialRecommender(mcfg).to(next(model.parameters()).device)


def _source_eval(
    model: SequentialRecommender, source: Domain, cfg: FinetuneConfig
) -> tuple[dict, np.ndarray]:
    model.set_item_table(source.tables)
    hist, tgt = _subsample(*source.split.test, cfg.source_max_users, cfg.seed)
    ranks = ev.rank_targets(model, hist, tgt, model.cfg.max_len, cfg.eval_batch_size, cfg.device)
    return ev.metric_block(ranks, cfg.n_boot), ranks


def _ewc_penalty(model: SequentialRecommender, source: Domain, cfg: FinetuneConfig) -> tuple[Any, int]:
    """EWC anchored at the pretrained weights, Fisher from `ewc_batches` source training batches."""
    model.set_item_table(source.tables)
    sampler = popularity_sampler(source.popularity, cfg.neg_alpha, cfg.device)
    batches = TrainBatches(source.split.train, model.cfg.max_len, cfg.batch_size, cfg.seed, device=cfg.device)
    gen = torch.Generator(device=cfg.device).manual_seed(cfg.seed)
    loss = SampledLoss(model, sampler, cfg.n_negatives, gen)
    seen = [0]

    def loss_fn(m: SequentialRecommender, b: Any) -> torch.Tensor:
        seen[0] += b.n_targets
        return loss(b.inputs, b.targets)

    fisher = diagonal_fisher(model, batches.batches(), loss_fn, cfg.ewc_batches)
    return EWCPenalty(model, fisher, cfg.ewc_lambda), seen[0]


def resume_path(out: str | Path) -> Path:
    """Where a time-boxed fine-tuning run into `out` leaves the state a later run continues from: beside
    `out`, which is written whole or not at all."""
    out = Path(out)
    return out.parent / f".{out.name}.resume.pt"


def _train(model: SequentialRecommender, plan: Plan, target: Domain, cfg: FinetuneConfig, ewc: Any,
           out: Path):
    if not plan.stages:
        return LoopResult()
    v_hist, v_tgt = _subsample(*target.split.valid, cfg.valid_max_users, cfg.seed)

    def validate(m: SequentialRecommender) -> float:
        ranks = ev.rank_targets(m, v_hist, v_tgt, m.cfg.max_len, cfg.eval_batch_size, cfg.device)
        return float(ev.metric_block(ranks, n_boot=0).get("ndcg@10", 0.0))

    batches = TrainBatches(target.split.train, model.cfg.max_len, cfg.batch_size, cfg.seed, device=cfg.device)
    if batches.n_units == 0:
        raise UserError(f"{cfg.data}: no user has 2+ training interactions after the leave-one-out split")
    sampler = popularity_sampler(target.popularity, cfg.neg_alpha, cfg.device)
    settings = LoopSettings(cfg.n_negatives, cfg.weight_decay, cfg.schedule, cfg.warmup_frac, cfg.patience,
                            cfg.device, cfg.seed, cfg.precision, cfg.progress, min_epochs=cfg.min_epochs,
                            max_minutes=cfg.max_minutes, resume_path=str(resume_path(out)))
    return run_stages(model, plan.stages, batches, sampler, validate, settings, ewc)


def _flops(model: SequentialRecommender, cfg: FinetuneConfig, targets: int) -> float:
    """Analytic training FLOPs (fwd + bwd of the whole model) for `targets` targets — an upper
    bound for strategies with frozen parts, which skip weight gradients there."""
    per = flops_per_target(model.cfg, cfg.n_negatives, model.cfg.max_len,
                           batch_targets=cfg.batch_size * model.cfg.max_len)["total"]
    return float(per * targets)


def _save_model(model: SequentialRecommender, tmp: Path, out: Path, tokens: Path | None, cfg: FinetuneConfig,
                step: int) -> None:
    """`model.safetensors` + `meta.json` through the run-dir writer, so `load_run` (serve,
    a later fine-tuning) reads the fine-tuned model like any run; paths point at the final dir."""
    meta = model_meta(model.cfg, tokens, cfg.data, step)
    meta["tokens_dir"] = str((out / "tokens").resolve()) if tokens else None
    save_weights(tmp, model, meta)


def _unsupported(cfg: FinetuneConfig, pre: Pretrained, n_users: int) -> dict[str, Any]:
    reason = (f"pretrained run {pre.run_dir} uses the ID item encoder: it cannot score unseen items, "
              f"and the target's items are all unseen (strategy '{cfg.strategy}' needs a text model)")
    block = {"status": "unsupported", "reason": reason, "n": n_users}
    return {"overall": block, "cold": block}


def _baseline(cfg: FinetuneConfig, pre: Pretrained, plan: Plan, target: Domain) -> tuple[dict, dict]:
    """The summary fields known before training (incl. most-popular) and the ranks saved so far."""
    test_tgt = target.split.test[1]
    cold = ev.cold_mask(target.split.train, test_tgt)
    pop_ranks = ev.most_popular_ranks(target.popularity, test_tgt)
    summary: dict[str, Any] = {
        "format_version": 1, "strategy": cfg.strategy, "pretrained": str(pre.run_dir), "target": cfg.data,
        "config": to_dict(cfg), "n_test_users": int(len(test_tgt)), "n_cold_targets": int(cold.sum()),
        "most_popular": {"overall": ev.metric_block(pop_ranks, cfg.n_boot),
                         "cold": ev.metric_block(pop_ranks[cold], cfg.n_boot)},
        "plan": [{"name": s.name, "groups": sorted(s.trainable), "epochs": s.epochs, "lr": s.lr}
                 for s in plan.stages],
        "item_encoder": pre.model.cfg.item_encoder, "source": None, "flops": 0.0, "wall_time_s": 0.0,
        "targets_seen": 0, "target_fraction": cfg.target_fraction,
        "n_train_users": int((target.split.train.lengths() > 0).sum()), **_pretrained_info(pre.run_dir),
    }
    return summary, {"most_popular": pop_ranks, "cold": cold}


def _pretrained_info(run_dir: Path) -> dict[str, Any]:
    """Size of the pretrained model, for the report's NDCG-vs-size curve."""
    e = entry(run_dir, run_dir.parent)
    return {"pretrained_size": e.size, "pretrained_params": e.params}


def _source(cfg: FinetuneConfig, pre: Pretrained, plan: Plan) -> Domain | None:
    """The pretraining domain, when EWC or the forgetting measurement needs it."""
    text = pre.model.cfg.item_encoder == "text"
    if not (text and not plan.reinit and (cfg.forgetting or plan.ewc)):
        return None
    if pre.source_dataset is None or pre.tokens_dir is None:
        raise UserError(f"{pre.run_dir}/meta.json: no source dataset recorded (needed for EWC/forgetting)")
    return load_domain(pre.source_dataset, pre.tokens_dir)


def _run(cfg: FinetuneConfig, pre: Pretrained, tmp: Path, out: Path) -> tuple[dict, dict]:
    model = pre.model
    text = model.cfg.has_text
    plan = make_plan(cfg.strategy, model, cfg.plan_settings())
    tokens = None
    if text:
        if pre.tokens_dir is None:
            raise UserError(f"{pre.run_dir}/meta.json: no tokens_dir, cannot reuse the pretrained tokenizer")
        tokens = retokenize_target(cfg, model.cfg, pre.tokens_dir, tmp)
    target = with_fraction(load_domain(cfg.data, tokens), cfg.target_fraction)
    summary, ranks = _baseline(cfg, pre, plan, target)
    if not text and not plan.reinit:
        summary["test"] = _unsupported(cfg, pre, summary["n_test_users"])
        return summary, ranks
    source = _source(cfg, pre, plan)
    before = after = None
    if source is not None and cfg.forgetting:
        before, ranks["source_before"] = _source_eval(model, source, cfg)
    ewc, fisher_targets = None, 0
    if plan.ewc:
        if source is None:  # `_source` loads it for every text run that keeps its weights
            raise UserError(f"strategy {cfg.strategy!r}: EWC needs a text-encoder run whose weights are kept")
        ewc, fisher_targets = _ewc_penalty(model, source, cfg)
    if plan.reinit:
        model = fresh_model(model, plan, target.n_items, cfg.seed)
        plan = make_plan(cfg.strategy, model, cfg.plan_settings())  # groups of the fresh model
    elif model.cfg.has_ids:  # hybrid: its ID rows name source items; target items start text-only
        model.reset_item_ids(target.n_items)
    model.set_item_table(target.tables)
    result = _train(model, plan, target, cfg, ewc, out)
    model.set_item_table(target.tables)
    test_hist, test_tgt = target.split.test
    ranks["test"] = ev.rank_targets(model, test_hist, test_tgt, model.cfg.max_len, cfg.eval_batch_size,
                                    cfg.device)
    summary["test"] = ev.split_blocks(ranks["test"], ranks["cold"], model.cfg.item_encoder, cfg.n_boot)
    if before is not None and source is not None:
        after, ranks["source_after"] = _source_eval(model, source, cfg)
    summary.update(
        item_encoder=model.cfg.item_encoder, source={"before": before, "after": after} if before else None,
        flops=_flops(model, cfg, result.targets_seen + fisher_targets), flops_note="analytic fwd+bwd of the "
        "whole model per target (upper bound when parts are frozen), incl. Fisher batches",
        wall_time_s=result.wall_time_s, targets_seen=result.targets_seen, steps=result.steps,
        valid={"ndcg@10": result.best_valid} if plan.stages else None,
        best_epoch=result.best_epoch, stopped_early=result.stopped_early,
        stopped_by_time=result.stopped_by_time, curve=result.curve,
        params={"total": sum(p.numel() for p in model.parameters())},
    )
    model.set_item_table(target.tables)
    _save_model(model, tmp, out, tokens, cfg, result.steps)
    return summary, ranks


def finetune(cfg: FinetuneConfig) -> dict[str, Any]:
    """Fine-tune (or evaluate zero-shot) the run `cfg.pretrained` on `cfg.data` with `cfg.strategy`.

    Writes `cfg.out` atomically (see the module docstring) and returns the summary dict that is
    also saved as `transfer.json`.
    """
    if not cfg.pretrained:
        raise UserError("finetune: --from (pretrained run dir) is required")
    if not cfg.data:
        raise UserError("finetune: --data (target dataset dir) is required")
    if not Path(cfg.data, "interactions.parquet").is_file():
        raise UserError(f"target dataset not found: {Path(cfg.data, 'interactions.parquet')}")
    from scalerec.transfer import outdir, pretrained, track

    pre = load_pretrained(pretrained.resolve(cfg.pretrained, cfg.pretrained_root), cfg.device)
    out = Path(cfg.out) if cfg.out else outdir.default_out(
        cfg.pretrained_root, pre.run_dir, cfg.data, cfg.strategy, cfg.target_fraction, cfg.seed)
    outdir.check_out(out, [pre.run_dir, Path(cfg.data)])
    tracker, status = track.start(cfg, pre.run_dir, out), "FAILED"
    try:
        with runlog.sigterm_as_interrupt(), atomic_dir(out) as tmp:
            summary, ranks = _run(cfg, pre, tmp, out)
            summary["out"] = str(out)
            ranks.setdefault("test", np.zeros(summary["n_test_users"], dtype=np.int64))  # 0 = unscorable
            np.savez(tmp / "ranks.npz", **ranks)
            (tmp / "transfer.json").write_text(numerics.dumps(summary, indent=2) + "\n", encoding="utf-8")
            track.log_summary(tracker, summary, tmp)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if tracker is not None:
            tracker.finish(status)
    return summary
