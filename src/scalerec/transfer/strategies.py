"""Fine-tuning strategies: which parameters train, in which stages, at which learning rate.

The paper (Zivic et al., SIGIR 2024, "fine-tuning" section) compares training from scratch, full
fine-tuning, freezing parts of the pretrained model, progressive unfreezing (ULMFiT-style: top block
first, then one more per stage, then everything) and EWC. Each strategy here is a small object
behind the `Strategy` protocol that turns the model's parameter groups into a list of `Stage`s;
`finetune.py` runs the stages and never branches on the strategy name.

Parameter groups come from the module tree, not from the model's private attribute names, so the
logic survives refactors of the model file:

- `embeddings`   every `nn.Embedding` inside the item encoder (token tables, or the item-id table)
- `item_adapter` every other parameter of the item encoder (pooling weights, the linear adapter)
- `positions`    an `nn.Embedding` outside the item encoder and the blocks (learned positions)
- `blocks.<i>`   parameters of transformer block i (a `ModuleList` named `blocks` or `layers`;
                 0 = bottom)
- `head`         everything else (final norm, input norm)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Literal, Protocol

from torch import nn

StrategyName = Literal[
    "zero-shot",
    "scratch",
    "id-scratch",
    "full",
    "freeze-transformer",
    "only-embeddings",
    "progressive",
    "ewc",
]
"""Strategy names accepted by `FinetuneConfig.strategy` and `scalerec finetune --strategy`."""

DEFAULT_LR: dict[str, float] = {
    "zero-shot": 0.0,
    "scratch": 1e-3,
    "id-scratch": 1e-3,
    "full": 1e-4,
    "freeze-transformer": 1e-3,
    "only-embeddings": 1e-3,
    "progressive": 3e-4,
    "ewc": 1e-4,
}
"""Peak LR per strategy when the config leaves `lr` unset: fresh or frozen-body models take a larger
step; updating a pretrained body uses a small one so the first steps do not erase what it knows."""

_BLOCK = re.compile(r"(?:^|\.)(?:blocks|layers)\.(\d+)(?:\.|$)")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One phase of fine-tuning: the parameter groups that train, for how long, at which peak LR."""

    name: str
    trainable: frozenset[str]
    epochs: int
    lr: float


@dataclasses.dataclass(frozen=True)
class Plan:
    """What `finetune` executes: stages in order, whether to start from fresh weights, and which
    item encoder the fresh model uses (`None` = same as the pretrained one), and whether EWC applies."""

    strategy: str
    stages: tuple[Stage, ...]
    reinit: bool = False
    reinit_item_encoder: Literal["text", "id"] | None = None
    ewc: bool = False

    @property
    def epochs(self) -> int:
        return sum(s.epochs for s in self.stages)


@dataclasses.dataclass(frozen=True)
class PlanSettings:
    """The strategy-relevant part of the fine-tuning config (kept separate so strategies are testable
    without a dataset)."""

    epochs: int = 10
    """Epochs of the (last) stage."""
    stage_epochs: int = 2
    """Progressive unfreezing: epochs per partial stage (top-1 block, top-2 blocks, …)."""
    freeze_embeddings: bool = False
    """Progressive unfreezing: keep the token-embedding tables frozen in every stage (the paper's
    setting). Off by default: with them frozen, progressive scored 0.0008 NDCG@10 on Beauty where
    every strategy that trains them reached 0.012-0.013 (docs/results/transfer)."""
    lr: float | None = None
    """Peak learning rate; `None` = the strategy's default from `DEFAULT_LR`."""


def group_of(name: str, module: nn.Module, in_item_encoder: bool) -> str:
    """Group label of a parameter, given its full dotted name and the module that owns it directly."""
    block = _BLOCK.search(name)
    if block:
        return f"blocks.{int(block.group(1))}"
    if in_item_encoder:
        return "embeddings" if isinstance(module, nn.Embedding) else "item_adapter"
    if isinstance(module, nn.Embedding):
        return "positions"
    return "head"


def param_groups(model: nn.Module) -> dict[str, list[str]]:
    """Map group label → full parameter names (see the module docstring for the labels)."""
    groups: dict[str, list[str]] = {}
    for mod_name, module in model.named_modules():
        in_item = mod_name == "item_encoder" or mod_name.startswith("item_encoder.")
        for p_name, _ in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            groups.setdefault(group_of(full, module, in_item), []).append(full)
    return groups


def n_blocks(groups: Iterable[str]) -> int:
    """Number of transformer blocks among the group labels."""
    return len([g for g in groups if g.startswith("blocks.")])


def apply_stage(model: nn.Module, stage: Stage) -> list[nn.Parameter]:
    """Set `requires_grad` from the stage's groups; return the trainable parameters (optimizer input)."""
    groups = param_groups(model)
    unknown = stage.trainable - set(groups)
    if unknown:
        raise ValueError(f"stage '{stage.name}' names groups the model lacks: {sorted(unknown)}")
    train_names = {n for g in stage.trainable for n in groups[g]}
    trainable = []
    for name, p in model.named_parameters():
        p.requires_grad_(name in train_names)
        if p.requires_grad:
            trainable.append(p)
    return trainable


class Strategy(Protocol):
    """Turns the model's parameter groups into the stages `finetune` runs."""

    def plan(self, groups: set[str], settings: PlanSettings) -> Plan: ...


def _lr(name: str, settings: PlanSettings) -> float:
    return settings.lr if settings.lr is not None else DEFAULT_LR[name]


@dataclasses.dataclass(frozen=True)
class ZeroShot:
    """Evaluate the pretrained model on the new domain as is: no stage runs."""

    def plan(self, groups: set[str], settings: PlanSettings) -> Plan:
        return Plan("zero-shot", ())


@dataclasses.dataclass(frozen=True)
class Scratch:
    """Same architecture, fresh weights, everything trains — the baseline fine-tuning must beat.
    `item_encoder="id"` gives the ID-SASRec baseline (one embedding per target item)."""

    name: str = "scratch"
    item_encoder: Literal["text", "id"] | None = None

    def plan(self, groups: set[str], settings: PlanSettings) -> Plan:
        stage = Stage("all", frozenset(groups), settings.epochs, _lr(self.name, settings))
        return Plan(self.name, (stage,), reinit=True, reinit_item_encoder=self.item_encoder)


@dataclasses.dataclass(frozen=True)
class Subset:
    """Pretrained weights; only the groups selected by `keep` train, in one stage."""

    name: str
    keep: str  # "all" | "item_encoder" | "not_blocks"
    ewc: bool = False

    def plan(self, groups: set[str], settings: PlanSettings) -> Plan:
        if self.keep == "all":
            chosen = set(groups)
        elif self.keep == "item_encoder":
            chosen = groups & {"embeddings", "item_adapter"}
        else:
            chosen = {g for g in groups if not g.startswith("blocks.")}
        stage = Stage(self.keep, frozenset(chosen), settings.epochs, _lr(self.name, settings))
        return Plan(self.name, (stage,), ewc=self.ewc)


@dataclasses.dataclass(frozen=True)
class Progressive:
    """ULMFiT-style unfreezing: stage i trains the top i blocks for `stage_epochs`, the last stage
    trains everything for `epochs`.

    Deviation from a literal reading of the paper: the item encoder trains in *every* stage. In a
    two-tower recommender the item vectors are the output layer (scores are dot products with
    them), and ULMFiT unfreezes from the output layer down. Our first version froze the whole item
    encoder in the partial stages and the token tables throughout: the body then trained against
    fixed item vectors that do not separate the new domain's items (zero-shot 0.0003 NDCG@10 on
    Beauty), valid NDCG@10 stayed at 0.0003-0.0005 through the partial stages, and the run ended at
    0.0008 against 0.012-0.013 for every strategy that trains the token tables. `freeze_embeddings`
    keeps the paper's frozen token tables for a target whose vocabulary the pretraining covers."""

    def plan(self, groups: set[str], settings: PlanSettings) -> Plan:
        lr = _lr("progressive", settings)
        depth = n_blocks(groups)
        frozen = {"embeddings"} if settings.freeze_embeddings else set()
        always = ({"head", "item_adapter", "embeddings"} & groups) - frozen
        stages = []
        for i in range(1, depth + 1):
            top = {f"blocks.{b}" for b in range(depth - i, depth)}
            stages.append(Stage(f"top-{i}", frozenset(top | always), settings.stage_epochs, lr))
        stages.append(Stage("all", frozenset(set(groups) - frozen), settings.epochs, lr))
        return Plan("progressive", tuple(s for s in stages if s.epochs > 0 and s.trainable))


STRATEGIES: dict[str, Strategy] = {
    "zero-shot": ZeroShot(),
    "scratch": Scratch(),
    "id-scratch": Scratch("id-scratch", "id"),
    "full": Subset("full", "all"),
    "freeze-transformer": Subset("freeze-transformer", "item_encoder"),
    "only-embeddings": Subset("only-embeddings", "not_blocks"),
    "progressive": Progressive(),
    "ewc": Subset("ewc", "all", ewc=True),
}
"""Strategy registry keyed by `StrategyName` (the config validates the key when it is parsed)."""


def reads_pretrained_weights(name: str) -> bool:
    """Whether strategy `name` starts from the pretrained weights. Scratch and its ID twin take only the
    pretrained run's architecture and token table, so which checkpoint of that size they came with does
    not change what they train."""
    return not isinstance(STRATEGIES.get(name), Scratch)


def make_plan(name: str, model: nn.Module, settings: PlanSettings) -> Plan:
    """The plan of strategy `name` for `model`'s parameter groups."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
    return STRATEGIES[name].plan(set(param_groups(model)), settings)
