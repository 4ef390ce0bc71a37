"""Everything the training loop needs, built from a `RunConfig`: data, model, optimizer, budget.

Kept apart from `trainer.py` so the loop itself reads top to bottom. The model config's
data-dependent fields (vocabulary, catalog size, field widths, positions) are filled here from the
token table and the dataset — the model never reads a dataset object (STYLE.md habit 4).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch

from scalerec.config import dumps_toml
from scalerec.errors import UserError
from scalerec.model.config import ModelConfig
from scalerec.model.sizes import flops_per_batch
from scalerec.model.sizes import flops_per_target as per_target
from scalerec.train.config import RunConfig
from scalerec.train.schedule import lr_factor

# Fields added after committed sweeps had ids, with the value that reproduces the runs from before them
# (logits_precision "fp32": those runs' bf16 logits gave the same result in fp32 runs; train_fraction 1.0:
# the whole training split; z_loss 0: no penalty). At that value a field is left out of the hash, so those
# sweeps stay adoptable; any other value gets ids of its own. z_loss's default became auto (None, also left
# out) on 2026-12-06; auto differs from 0 only in packed bf16 runs, so the committed GPU sweeps and the
# transfer study pin 0 in their configs, keeping their ids and what their runs did.
_ADDED_FIELDS: tuple[tuple[str, str, object], ...] = (
    ("train", "logits_precision", "fp32"), ("data", "train_fraction", 1.0), ("train", "z_loss", 0.0),
    ("eval", "monitor", "ndcg@10"),
)


def run_id(cfg: RunConfig) -> str:
    """Stable id of a run: hash of the resolved config minus where/how it is written."""
    sections: dict[str, Any] = {
        "run": dataclasses.replace(
            cfg.run, out="", name="", tracking_uri=None, progress=True, device="auto", tensorboard=False
        ),
        "train": dataclasses.replace(  # how often state is saved: not part of the result
            cfg.train, stop_after_steps=None, log_every=0, log_seconds=30.0, save_state_s=None
        ),
        "data": cfg.data,
        "eval": cfg.eval,
    }
    for section, name, before in _ADDED_FIELDS:
        if getattr(sections[section], name) == before:  # None: unset, not written
            sections[section] = dataclasses.replace(sections[section], **{name: None})
    text = dumps_toml(dataclasses.replace(cfg, **sections))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def resolved_loss(cfg: RunConfig, n_items: int) -> Literal["sampled", "full", "bce"]:
    """`train.loss`, with "auto" decided by the catalog size (full softmax when it fits)."""
    t = cfg.train
    if t.loss != "auto":
        return t.loss
    return "full" if n_items <= t.full_softmax_max_items else "sampled"


def auto_log_every(steps_per_epoch: int) -> int:
    """About 10 log points per epoch, at most 50 steps apart (ml-100k: 19 steps/epoch → every 1)."""
    return max(1, min(50, steps_per_epoch // 10))


AUTO_Z_LOSS = 1e-4
"""`train.z_loss` of an auto run of a text or hybrid model that packs under bf16/fp16 autocast (PaLM's
value; the packing diagnostic's stage 5b tested it: BENCHMARKS.md, packing)."""


def resolved_z_loss(cfg: RunConfig, loss: str, packed: bool, low_precision: bool) -> float:
    """`train.z_loss`, with auto (None) decided by the run's model, layout and precision: the logits' common
    offset drifted only in text models trained on packed batches under bf16 (padded and fp32 runs held it
    near 1, and packed ID-SASRec kept padded's accuracy without a z-loss, so it is left as measured)."""
    z = cfg.train.z_loss
    if z is not None:
        return z
    return AUTO_Z_LOSS if cfg.model.has_text and packed and low_precision and loss != "bce" else 0.0


def resolve_auto(
    cfg: RunConfig, n_items: int, n_batches_per_epoch: int, packed: bool = False, low_precision: bool = False
) -> RunConfig:
    """`cfg` with its data- and device-dependent "auto" values (loss, log_every, z_loss) decided, as
    config.toml records."""
    t = cfg.train
    spe = max(1, math.ceil(n_batches_per_epoch / t.grad_accum))
    log_every = t.log_every or auto_log_every(spe)
    loss = resolved_loss(cfg, n_items)
    z_loss = resolved_z_loss(cfg, loss, packed, low_precision)
    return dataclasses.replace(
        cfg, train=dataclasses.replace(t, loss=loss, log_every=log_every, z_loss=z_loss)
    )


def fill_model_config(cfg: RunConfig, n_items: int, tokens: Any | None) -> ModelConfig:
    """The run's ModelConfig with vocab, catalog size, field widths and max_len from the data."""
    m = cfg.model
    updates: dict[str, Any] = {"max_len": cfg.data.max_len}
    if m.has_ids:
        updates["n_items"] = n_items
    if m.has_text:
        if tokens is None:
            raise UserError(
                f"the {m.item_encoder} item encoder needs --tokens "
                "(a token table dir from `scalerec text train`)"
            )
        if tokens.n_rows != n_items + 1:
            raise UserError(
                f"token table has {tokens.n_rows - 1} items but the dataset has {n_items}; "
                "was it built from another dataset?"
            )
        fields = {
            f: min(n, tokens.fields[f].shape[1]) for f, n in m.field_max_len.items() if f in tokens.fields
        }
        if not fields:
            raise UserError(f"token table has none of the model fields {list(m.field_max_len)}")
        updates.update(vocab_size=tokens.vocab_size, field_max_len=fields)
    return dataclasses.replace(m, **updates)


def param_groups(model: torch.nn.Module, cfg: RunConfig) -> list[dict[str, Any]]:
    """Parameter groups: decay on matrices only (AdamW) and optional per-layer LR decay."""
    t, n_layers = cfg.train, cfg.model.n_layers
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        wd = t.weight_decay if (t.optimizer == "adam" or p.dim() >= 2) else 0.0
        mult = 1.0
        if t.layer_lr_decay != 1.0:
            m = re.search(r"\.layers\.(\d+)\.", name)
            depth = (
                int(m.group(1)) if m else (n_layers if name.startswith(("item_encoder", "pos_emb")) else -1)
            )
            mult = (
                t.layer_lr_decay ** (n_layers - 1 - depth) if depth < n_layers else t.layer_lr_decay**n_layers
            )
            mult = 1.0 if depth == -1 else mult
        groups.setdefault((wd, mult), []).append(p)
    return [{"params": ps, "weight_decay": wd, "lr": t.lr * mult} for (wd, mult), ps in groups.items()]


def optimizer(model: torch.nn.Module, cfg: RunConfig, device: torch.device) -> torch.optim.Optimizer:
    t = cfg.train
    kwargs: dict[str, Any] = {"lr": t.lr, "betas": tuple(t.betas), "fused": device.type == "cuda"}
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    return cls(param_groups(model, cfg), **kwargs)


def scheduler(
    opt: torch.optim.Optimizer, cfg: RunConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    t = cfg.train
    warm = t.warmup_steps if t.warmup_steps is not None else int(t.warmup * total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(t.schedule, s, total_steps, warm, t.min_lr_ratio, t.decay_steps)
    )


@dataclass
class Budget:
    """How long the run is, in every unit."""

    total_steps: int
    steps_per_epoch: int
    targets_per_epoch: int
    flops_per_target: float


def flops_per_target(
    mcfg: ModelConfig, cfg: RunConfig, micro_batch: int, targets_per_micro: float, n_items: int
) -> float:
    """Analytic training FLOPs (fwd + bwd) per target for this recipe (`scalerec.model.sizes`)."""
    t = cfg.train
    kind = resolved_loss(cfg, n_items)
    k = 1 if kind == "bce" else t.negatives
    loss: Literal["sampled", "full"] = "full" if kind == "full" else "sampled"
    shared = t.shared_negatives and kind == "sampled"
    if t.targets == "last":
        fb = flops_per_batch(
            mcfg, micro_batch, cfg.data.max_len, k, loss, n_items, shared, targets_per_sequence=1
        )
        return fb["total"] / micro_batch
    bt = max(1, int(targets_per_micro)) if shared or loss == "full" else None
    # the objective encodes each window once: target vectors reuse the input pass
    return per_target(mcfg, k, cfg.data.max_len, loss, n_items, bt, encode_targets=False)["total"]


def budget(cfg: RunConfig, n_batches_per_epoch: int, targets_per_epoch: int, fpt: float) -> Budget:
    """Total optimizer steps from max_flops > max_targets > max_steps > epochs."""
    t = cfg.train
    spe = max(1, math.ceil(n_batches_per_epoch / t.grad_accum))
    per_step = targets_per_epoch / spe
    if t.max_flops is not None:
        steps = math.ceil(t.max_flops / fpt / per_step)
    elif t.max_targets is not None:
        steps = math.ceil(t.max_targets / per_step)
    elif t.max_steps is not None:
        steps = t.max_steps
    else:
        steps = math.ceil(cast(float, t.epochs) * spe)  # __post_init__: one run length is set
    return Budget(max(1, steps), spe, targets_per_epoch, fpt)


def eval_every(cfg: RunConfig, b: Budget) -> int:
    return cfg.eval.every_steps if cfg.eval.every_steps > 0 else b.steps_per_epoch
