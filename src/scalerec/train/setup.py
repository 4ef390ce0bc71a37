"""Build the runtime of one training run (device, data, model, optimizer, trackers) or restore it.

Separated from the loop so `trainer.py` reads as the loop only. On `resume`, the same objects are
built from the same config, then overwritten from `state.pt`: weights, optimizer, scheduler, every
RNG, the sampler's generator and the data position — so a resumed CPU run is bit-for-bit the run
that was never stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scalerec import device as dev
from scalerec import runlog
from scalerec.config import dumps_toml, to_dict
from scalerec.data.sequences import TrainBatches, item_popularity, leave_one_out, load_sequences
from scalerec.errors import UserError
from scalerec.io import atomic_write
from scalerec.train import build, checkpoint, world_stream
from scalerec.train.config import RunConfig
from scalerec.train.negatives import make_sampler
from scalerec.train.objective import NextItemObjective
from scalerec.train.tracking import MetricsLog, MlflowTracker, default_tracking_uri


@dataclass
class Counters:
    """Loop state saved in `state.pt` (plain data)."""

    step: int = 0
    targets_seen: int = 0
    wall_time_s: float = 0.0
    best_ndcg: float = -1.0
    best_step: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    bad_evals: int = 0
    stopped_early: bool = False


@dataclass
class Runtime:
    """Everything built for one run."""

    cfg: RunConfig
    dir: Path
    device: torch.device
    dtype: torch.dtype | None
    model: torch.nn.Module  # SequentialRecommender (unwrapped)
    objective: NextItemObjective
    step_module: torch.nn.Module  # objective, maybe compiled, maybe DDP-wrapped
    opt: torch.optim.Optimizer
    sched: Any
    batches: TrainBatches
    sampler: Any
    gen: torch.Generator
    split: Any
    budget: build.Budget
    log: MetricsLog
    bar: runlog.ProgressBar
    meta: dict[str, Any]
    counters: Counters = field(default_factory=Counters)
    start_step: int = 0
    distinct_items: bool = False  # deduplicate each batch's items before encoding them


def _init_distributed(device: torch.device) -> None:
    if runlog.world_size() > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")


def _load_tokens(cfg: RunConfig) -> Any | None:
    if cfg.model.item_encoder != "text":
        return None
    if not cfg.data.tokens:
        raise UserError("data.tokens is not set: the text item encoder needs --tokens DIR (or --encoder id)")
    from scalerec.text.item_tokens import load_item_tokens

    return load_item_tokens(cfg.data.tokens)


def setup(cfg: RunConfig, resume: bool) -> Runtime:
    """Build (and on `resume`, restore) the runtime of `cfg`'s run."""
    from scalerec.model import SequentialRecommender

    device = dev.pick_device(cfg.run.device)
    dtype = dev.autocast_dtype(device, cfg.train.precision)
    _init_distributed(device)
    rank, world, t = runlog.rank(), runlog.world_size(), cfg.train
    dev.seed_everything(cfg.run.seed)
    # -- data ---------------------------------------------------------------------------------
    split = leave_one_out(load_sequences(cfg.data.dataset))
    n_items = split.train.n_items
    tokens = _load_tokens(cfg)
    micro = t.batch_size // t.grad_accum
    if micro * t.grad_accum != t.batch_size or micro % world:
        raise UserError(f"train.batch_size={t.batch_size} must be divisible by grad_accum x world size")
    batch_args = (cfg.data.max_len, micro, cfg.run.seed, t.targets, rank, world, device)
    if world_stream.is_world(cfg.data.dataset):  # known-floor world: training users are streamed
        batches = world_stream.WorldBatches(cfg.data.dataset, *batch_args, cfg.data.train_users)
        popularity = batches.popularity()
    else:
        batches = TrainBatches(split.train, *batch_args)
        popularity = item_popularity(split.train)
    if batches.n_units == 0:
        raise UserError(f"{cfg.data.dataset}: no user has 2 training items after the leave-one-out split")
    # -- model, objective, optimizer --------------------------------------------------------------
    mcfg = build.fill_model_config(cfg, n_items, tokens)
    model = SequentialRecommender(mcfg).to(device)
    if tokens is not None:
        model.set_item_table(tokens.torch_tables())
    torch.manual_seed(cfg.run.seed * 1000 + rank + 1)  # per-rank dropout streams
    sampler = make_sampler(t.sampler, popularity, t.sampler_alpha, device)
    gen = torch.Generator(device=device).manual_seed(
        cfg.run.seed * 7919 + (0 if t.shared_negatives else rank)
    )
    logq = sampler.logp if (t.logq and t.loss == "sampled") else None
    objective = NextItemObjective(model, t.loss, t.targets, t.temperature, logq)
    step_module: torch.nn.Module = objective
    if t.compile:
        step_module = torch.compile(step_module, mode=t.compile_mode)
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
    run_dir = runlog.run_dir(cfg.run.out, cfg.run.name or build.run_id(cfg))
    _prepare_dir(cfg, run_dir, resume)
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
        _metrics_log(cfg, run_dir, resume),
        runlog.ProgressBar(0, False),
        meta,
    )
    rt.distinct_items = t.distinct_items and mcfg.item_encoder == "text" and t.targets == "all"
    if resume:
        _restore(rt)
    rt.bar = runlog.ProgressBar(budget.total_steps, cfg.run.progress, start=rt.counters.step)
    return rt


def _prepare_dir(cfg: RunConfig, run_dir: Path, resume: bool) -> None:
    """Fresh run: clear a previous run of the same name, write config.toml. Resume: check state.pt."""
    if resume:
        if not (run_dir / "state.pt").is_file():
            raise UserError(f"{run_dir}: no state.pt to resume from")
        if (run_dir / "final.json").is_file():
            raise UserError(f"{run_dir}: run is already complete (final.json exists)")
        return
    if not runlog.is_main():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("final.json", "state.pt", "model.safetensors", "meta.json", "metrics.jsonl"):
        (run_dir / name).unlink(missing_ok=True)
    with atomic_write(run_dir / "config.toml") as fh:
        fh.write(dumps_toml(cfg) + "\n")


def _metrics_log(cfg: RunConfig, run_dir: Path, resume: bool) -> MetricsLog:
    tracker = None
    if runlog.is_main() and (cfg.run.tracking_uri or "").lower() != "off":
        uri = cfg.run.tracking_uri or default_tracking_uri(cfg.run.out)
        tracker = MlflowTracker(uri, "scalerec", run_dir.name, {"config": to_dict(cfg)})
    return MetricsLog(run_dir / "metrics.jsonl", tracker, enabled=runlog.is_main())


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
    rt.log.truncate_after(rt.counters.step)
