"""Build the runtime of one training run (device, data, model, optimizer, trackers) or restore it.

Separated from the loop so `trainer.py` reads as the loop only. On `resume`, the same objects are
built from the same config, then overwritten from `state.pt`: weights, optimizer, scheduler, every
RNG, the sampler's generator and the data position — so a resumed CPU run is bit-for-bit the run
that was never stopped.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from scalerec import device as dev
from scalerec import runlog
from scalerec.config import dumps_toml, to_dict
from scalerec.data.read.fractions import keep_fraction, training_targets, training_users
from scalerec.data.read.sequences import item_popularity, load_sequences
from scalerec.data.read.splits import leave_one_out
from scalerec.errors import UserError
from scalerec.io import atomic_write
from scalerec.memory import check_training
from scalerec.model import SequentialRecommender
from scalerec.text.item_tokens import load_item_tokens
from scalerec.train import build, checkpoint, numerics, outputs, world_stream
from scalerec.train.batches import PackedBatches, UnpackedBatches, train_batches
from scalerec.train.config import RunConfig
from scalerec.train.mlflow_tracker import MlflowTracker, code_version, default_tracking_uri, saved_run_id
from scalerec.train.negatives import NegativeSampler, make_sampler
from scalerec.train.objective import NextItemObjective
from scalerec.train.padded import TrainBatches
from scalerec.train.tensorboard_sink import TensorBoardSink
from scalerec.train.tracking import MetricsLog

if TYPE_CHECKING:
    from scalerec.data.read.splits import Split
    from scalerec.model.recommender import SequentialRecommender


@dataclass
class Counters:
    """Loop state saved in `state.pt` (plain data)."""

    step: int = 0
    targets_seen: int = 0
    wall_time_s: float = 0.0
    best_ndcg: float = -1.0
    """Best validation score of `eval.monitor` so far (NDCG@10 unless set; minus the loss when monitoring
    loss). The name predates `eval.monitor` and is kept so saved states still load."""
    best_step: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    bad_evals: int = 0
    stopped_early: bool = False
    stopped_by_time: bool = False


@dataclass
class Runtime:
    """Everything built for one run."""

    cfg: RunConfig
    dir: Path
    device: torch.device
    dtype: torch.dtype | None
    model: SequentialRecommender  # unwrapped
    objective: NextItemObjective
    step_module: torch.nn.Module  # objective, maybe compiled, maybe DDP-wrapped
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    batches: TrainBatches | PackedBatches | UnpackedBatches | world_stream.WorldBatches
    sampler: NegativeSampler
    gen: torch.Generator
    split: Split
    budget: build.Budget
    log: MetricsLog
    bar: runlog.ProgressBar
    meta: dict[str, Any]
    counters: Counters = field(default_factory=Counters)
    start_step: int = 0
    distinct_items: bool = False  # deduplicate each batch's items before encoding them
    claim: outputs.RunDirClaim | None = None  # lock + where this run writes / ends up
    run_id: str = ""  # hash of the config as given (before "auto" values were resolved)
    cause: str = ""  # the likely cause named when the loss turns non-finite
    pending_best: dict[str, torch.Tensor] | None = None  # best weights not yet on disk (host copy)
    state_saved_at: float = 0.0  # time.perf_counter() of the last state.pt write
    train_data: dict[str, Any] = field(default_factory=dict)  # fraction, users, D: for final.json
    grad_norms: torch.Tensor | None = None  # on the device, since the last log line: [sum of pre-clip
    # gradient norms, steps clipped] (train.grad_clip > 0 only; the norm is computed by the clip anyway)
    offset_warned: bool = False  # `numerics.logit_offset_warning` was given (once per process)


def _init_distributed(device: torch.device) -> None:
    if runlog.world_size() > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")


def _load_tokens(cfg: RunConfig) -> Any | None:
    if not cfg.model.has_text:
        return None
    if not cfg.data.tokens:
        raise UserError(f"data.tokens is not set: the {cfg.model.item_encoder} item encoder needs "
                        "--tokens DIR (or --encoder id)")

    return load_item_tokens(cfg.data.tokens)


def _training_data(
    cfg: RunConfig, micro: int, rank: int, world: int, device: torch.device
) -> tuple[Split, TrainBatches | PackedBatches | UnpackedBatches | world_stream.WorldBatches, Any,
           dict[str, Any]]:
    """(split, batch stream, training popularity, what final.json records of the training data).

    The one place the training split is assembled, for every batch layout and item encoder:
    `data.train_fraction` cuts it to its nested users here, and popularity (negatives, logQ) is
    counted on what is kept; validation and test keep every user."""
    t, d = cfg.train, cfg.data
    split = leave_one_out(load_sequences(d.dataset))
    if world_stream.is_world(d.dataset):  # known-floor world: training users are streamed
        if d.train_fraction < 1:
            raise UserError(
                f"data.train_fraction={d.train_fraction}: {d.dataset} is a world dataset, "
                "whose training users are streamed; cap them with data.train_users"
            )
        batch_args = (d.max_len, micro, cfg.run.seed, t.targets, rank, world, device)
        stream = world_stream.WorldBatches(d.dataset, *batch_args, d.train_users)
        info = {"train_fraction": 1.0, "train_users_kept": d.train_users, "unique_train_targets": None}
        return split, stream, stream.popularity(), info
    split.train = keep_fraction(split.train, d.train_fraction)
    batches = train_batches(
        split.train, d.max_len, micro, cfg.run.seed, t.targets, t.packing, rank, world, device
    )
    info = {
        "train_fraction": d.train_fraction,
        "train_users_kept": training_users(split.train),
        "unique_train_targets": training_targets(split.train),
    }
    return split, batches, item_popularity(split.train), info


def setup(cfg: RunConfig, resume: bool, overwrite: bool = False, extend: bool = False) -> Runtime:
    """Build (and on `resume` or `extend`, restore) the runtime of `cfg`'s run; holds the run's lock."""
    device = dev.pick_device(cfg.run.device)
    _init_distributed(device)
    rid = build.run_id(cfg)
    target = runlog.run_dir(cfg.run.out, cfg.run.name or rid)
    if extend and runlog.is_main():
        _check_extension(cfg, target)
    claim = outputs.claim(target, resume, overwrite, runlog.is_main(), extend)
    if extend and torch.distributed.is_initialized():
        torch.distributed.barrier()  # rank 0 has copied the run into the staging dir the others read
    try:
        rt = _build(cfg, device, claim, resume or extend, extend)
    except BaseException:
        claim.release()
        raise
    rt.run_id = rt.run_id or rid
    return rt


def _check_extension(cfg: RunConfig, target: Path) -> None:
    """An extension must give the clock more than the run already spent, else it would stop at once."""
    spent = float(outputs.time_cut(target).get("wall_time_s") or 0.0)
    limit = cfg.train.max_minutes
    if limit is not None and 60.0 * limit <= spent:
        raise UserError(
            f"{target}: train.max_minutes={limit:g} is within the {spent / 60:.2f} minutes the run already "
            "trained (the box counts the run's whole training time); raise it, or unset it to run to the end"
        )


def _build(
    cfg: RunConfig, device: torch.device, claim: outputs.RunDirClaim, resume: bool, extend: bool = False
) -> Runtime:
    dtype = dev.autocast_dtype(device, cfg.train.precision)
    rank, world, t = runlog.rank(), runlog.world_size(), cfg.train
    dev.seed_everything(cfg.run.seed)
    # -- data ---------------------------------------------------------------------------------
    tokens = _load_tokens(cfg)
    micro = t.batch_size // t.grad_accum
    if micro * t.grad_accum != t.batch_size or micro % world:
        raise UserError(f"train.batch_size={t.batch_size} must be divisible by grad_accum x world size")
    split, batches, popularity, train_data = _training_data(cfg, micro, rank, world, device)
    n_items = split.train.n_items
    if batches.n_units == 0:
        raise UserError(f"{cfg.data.dataset}: no user has 2 training items after the leave-one-out split")
    packed = isinstance(batches, PackedBatches)
    cfg = build.resolve_auto(cfg, n_items, len(batches), packed=packed, low_precision=dtype is not None)
    t = cfg.train
    z_loss = t.z_loss or 0.0  # resolved above: never None here
    # -- model, objective, optimizer --------------------------------------------------------------
    mcfg = build.fill_model_config(cfg, n_items, tokens)
    check_training(mcfg, micro, t.targets, t.loss, t.negatives, t.shared_negatives, n_items, device)
    model = SequentialRecommender(mcfg).to(device)
    if tokens is not None:
        model.set_item_table(tokens.torch_tables())
    torch.manual_seed(cfg.run.seed * 1000 + rank + 1)  # per-rank dropout streams
    sampler = make_sampler(t.sampler, popularity, t.sampler_alpha, device)
    gen = torch.Generator(device=device).manual_seed(
        cfg.run.seed * 7919 + (0 if t.shared_negatives else rank)
    )
    logq = sampler.logp if (t.logq and t.loss == "sampled") else None
    objective = NextItemObjective(
        model, t.loss, t.targets, t.temperature, logq, fp32_logits=t.logits_precision == "fp32",
        z_loss=z_loss,
    )
    step_module: torch.nn.Module = objective
    if t.compile:
        step_module = cast(torch.nn.Module, torch.compile(step_module, mode=t.compile_mode))
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        step_module = torch.nn.parallel.DistributedDataParallel(
            step_module, device_ids=ids, broadcast_buffers=False
        )
    tpm = batches.targets_per_epoch() / max(1, len(batches))
    fpt = build.flops_per_target(mcfg, cfg, micro, tpm, n_items)
    budget = build.budget(cfg, len(batches), batches.targets_per_epoch(), fpt)
    opt = build.optimizer(model, cfg, device)
    sched = build.scheduler(opt, cfg, budget.total_steps)
    # -- run dir, trackers, resume ------------------------------------------------------------
    run_dir = claim.work
    _prepare_dir(cfg, run_dir, resume, extend)
    meta = checkpoint.model_meta(mcfg, cfg.data.tokens, cfg.data.dataset, 0)
    rt = Runtime(
        cfg,
        run_dir,
        device,
        dtype,
        model,
        objective,
        step_module,
        opt,
        sched,
        batches,
        sampler,
        gen,
        split,
        budget,
        MetricsLog(run_dir / "metrics.jsonl", enabled=False),
        runlog.ProgressBar(0, False),
        meta,
        claim=claim,
        cause=numerics.likely_cause(t.lr, t.temperature, t.sampler_alpha),
        train_data=train_data,
    )
    rt.distinct_items = t.distinct_items and mcfg.has_text and t.targets == "all"
    caveat = packing_caveat(t.packing, packed, mcfg.has_text, dtype is not None, z_loss)
    if caveat and runlog.is_main():
        warnings.warn(caveat, stacklevel=2)
    if resume:
        _restore(rt)
    rt.log = _metrics_log(rt, resume)
    rt.bar = runlog.ProgressBar(budget.total_steps, cfg.run.progress, start=rt.counters.step)
    return rt


def packing_caveat(
    packing: str, packed: bool, has_text: bool, low_precision: bool, z_loss: float
) -> str | None:
    """The warning a run gets when `train.packing="auto"` packs a text or hybrid model under bf16
    autocast without a z-loss (`train.z_loss=0` set, overriding auto): the one case where packing was
    measured to cost accuracy (BENCHMARKS.md, packing diagnostic: packed fp32 runs followed the padded
    curves, every bf16 packed run without a z-loss fell behind late), said where the user starts the run
    rather than only in the docs; an explicit "on" was chosen knowingly."""
    if packing != "auto" or not packed or not has_text or not low_precision or z_loss > 0:
        return None
    return ("train.packing=auto packs this text model's batches under bf16 with train.z_loss=0; the Beauty "
            "text model trained so fell behind padded late in training (0.0031 and 0.0045 NDCG@10 over 3 "
            "seeds in two same-run controls on an H200 and an H100), as the logits' common offset drifted "
            "(1 -> ~100 by epoch 100). The default z-loss (unset train.z_loss, or --set train.z_loss=1e-4) "
            "held it and left 0.0023 (not significant); padded (--set train.packing=off) or fp32 "
            "(--set train.precision=fp32) runs never drifted (BENCHMARKS.md)")


def _prepare_dir(cfg: RunConfig, run_dir: Path, resume: bool, extend: bool = False) -> None:
    """Fresh run: write config.toml into the claimed (empty or staging) dir. Resume: check state.pt.
    Extend: also rewrite config.toml, so a later --resume of the longer run keeps its new time box.
    Nothing is deleted here: `outputs.claim` already refused to reuse a dir holding a run."""
    if resume:
        if not (run_dir / "state.pt").is_file():
            raise UserError(f"{run_dir}: no state.pt to resume from")
        if (run_dir / "final.json").is_file():
            stopped = json.loads((run_dir / "final.json").read_text()).get("stopped_by_time")
            hint = "; its time box stopped it: continue it with --extend and a larger train.max_minutes" \
                if stopped else ""
            raise UserError(f"{run_dir}: run is already complete (final.json exists){hint}")
        if not extend:
            return
    if not runlog.is_main():
        return
    with atomic_write(run_dir / "config.toml") as fh:
        fh.write(dumps_toml(cfg) + "\n")


def run_tags(cfg: RunConfig) -> dict[str, str]:
    """MLflow tags to find a run by: dataset, size, encoder, recipe, seed, loss, git commit."""
    return {
        "kind": "train",
        "dataset": Path(cfg.data.dataset).name,
        "dataset_path": str(cfg.data.dataset),
        "size": cfg.model_size or "custom",
        "encoder": cfg.model.item_encoder,
        "recipe": cfg.recipe,
        "seed": str(cfg.run.seed),
        "loss": cfg.train.loss,
        "runs_root": str(cfg.run.out),
        "git_commit": code_version(),
    }


def _metrics_log(rt: Runtime, resume: bool) -> MetricsLog:
    """metrics.jsonl + MLflow (unless tracking_uri is "off"; a resume reopens the run's MLflow run)
    + TensorBoard (run.tensorboard); on resume, the file is cut to the restored step."""
    cfg, tracker, board = rt.cfg, None, None
    if runlog.is_main() and (cfg.run.tracking_uri or "").lower() != "off":
        uri = cfg.run.tracking_uri or default_tracking_uri(cfg.run.out)
        name = rt.claim.target.name if rt.claim else rt.dir.name
        previous = saved_run_id(rt.dir, uri) if resume else None
        tracker = MlflowTracker(uri, "scalerec", name, {"config": to_dict(cfg)}, run_tags(cfg), previous)
        tracker.save(rt.dir)
    if runlog.is_main() and cfg.run.tensorboard:
        board = TensorBoardSink(rt.dir / "tensorboard")
    log = MetricsLog(rt.dir / "metrics.jsonl", tracker, enabled=runlog.is_main(), extra=board)
    if resume:
        log.truncate_after(rt.counters.step)
    return log


def _restore(rt: Runtime) -> None:
    state = checkpoint.load_state(rt.dir)
    rt.model.load_state_dict(state["model"])
    rt.opt.load_state_dict(state["optimizer"])
    rt.sched.load_state_dict(state["scheduler"])
    rt.batches.load_state_dict(state["data"])
    own = checkpoint.load_rank_rng(rt.dir, runlog.rank()) if runlog.rank() > 0 else None
    rt.gen.set_state((own or state)["generator"])
    dev.set_rng_state((own or state)["rng"])
    rt.counters = Counters(**state["counters"])
    rt.start_step = rt.counters.step
    rt.run_id = state.get("run_id", "")
