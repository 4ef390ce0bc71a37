"""The study's grid as data (`StudySpec`) and its expansion into cells, phase by phase.

A cell is one unit of work that writes one row: a pretraining run at one LR, one fine-tuning run,
one tuned baseline, or the most-popular ranking of one target fraction. Cells come in phases because
later ones depend on choices made on validation by earlier ones:

1. pretraining, every (target corpus, size, LR); the tuned baselines and most-popular (they need no
   pretrained model);
2. fine-tuning at the key size, every (target, fraction, strategy, LR of the strategy's grid), seed 0,
   from the checkpoint whose LR won on validation;
3. every other size at the LR phase 2 chose for (target, fraction, strategy), and the key strategies
   at the key size again with the other seeds.

Nothing reads a test metric to choose: LRs and epochs come from validation only (`store.choose_lr`).
`lr = None` marks an LR not chosen yet: `plan.py` costs such cells all the same (FLOPs do not
depend on the LR).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from scalerec.transfer.strategies import DEFAULT_LR

CellKind = Literal["pretrain", "finetune", "baseline", "popular"]


@dataclass
class StudySpec:
    """The grid of the study (TOML: `configs/transfer/study/v2.toml`)."""

    targets: list[str] = field(default_factory=lambda: ["beauty", "games", "office"])
    """Held-out target domains; each gets its own pretraining corpus (the pooled corpus minus its
    domain, see `scalerec.transfer.study.corpora`)."""
    sizes: list[str] = field(default_factory=lambda: ["xs", "s", "m"])
    """Pretrained sizes (`scalerec.model.sizes.SIZES`)."""
    key_size: str = "s"
    """Size whose fine-tuning LRs are searched and whose key cells get every seed."""
    fractions: list[float] = field(default_factory=lambda: [0.05, 0.2, 1.0])
    """Nested fractions of the target's training users (validation and test users: all, always)."""
    pretrain_lrs: list[float] = field(default_factory=lambda: [3e-4, 1e-3, 3e-3])
    """Pretraining LR grid (per corpus and size; the winner on validation is kept)."""
    pretrain_lrs_per_size: dict[str, list[float]] = field(default_factory=dict)
    """A size's own pretraining LR grid, replacing `pretrain_lrs` for it: the optimum moves with size, and
    one grid that brackets xs's optimum put s's and m's at its bottom edge (Beauty corpus, H200 run)."""
    pretrain_epochs: float = 30.0
    """Most pretraining epochs (early stopping on validation NDCG@10 usually ends sooner)."""
    pretrain_patience: int = 3
    """Validations without a better NDCG@10 before a pretraining run stops."""
    pretrain_batch: int = 256
    """Pretraining sequences per step."""
    pretrain_loss: Literal["full", "sampled"] = "full"
    """Pretraining loss (full softmax over the ~60K-item corpus, as the tuned Beauty recipes)."""
    pretrain_negatives: int = 1000
    """Negatives per step when `pretrain_loss = "sampled"`."""
    vocab_size: int = 30000
    """BPE vocabulary of each corpus's tokenizer (the target is tokenized with it)."""
    max_len: int = 50
    """Longest history, pretraining and fine-tuning."""
    pretrain_set: list[str] = field(default_factory=list)
    """Extra `--set` overrides of every pretraining run (e.g. `model.dropout=0.2`)."""
    strategies: list[str] = field(
        default_factory=lambda: [
            "zero-shot",
            "full",
            "freeze-transformer",
            "only-embeddings",
            "progressive",
            "ewc",
            "scratch",
        ]
    )
    """Fine-tuning strategies (`scalerec.transfer.strategies.STRATEGIES`)."""
    key_strategies: list[str] = field(default_factory=lambda: ["full", "scratch"])
    """Strategies run with every seed at the key size (the learning curve's headline pair)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Seeds of the key cells; every other cell uses the first."""
    ft_lr_mults: list[float] = field(default_factory=lambda: [1 / 3, 1.0, 3.0])
    """Fine-tuning LR grid: each strategy's default LR (`DEFAULT_LR`) times these."""
    ft_epochs: int = 30
    """Most epochs of a fine-tuning run's last stage (early stopping picks the epoch)."""
    ft_patience: int = 5
    """Fine-tuning epochs without a better validation NDCG@10 before stopping."""
    ft_min_epochs: int = 0
    """Fine-tuning epochs before early stopping may end a run (`FinetuneConfig.min_epochs`)."""
    stage_epochs: int = 3
    """Progressive unfreezing: epochs per partial stage."""
    ft_batch: int = 128
    """Fine-tuning sequences per step."""
    ft_negatives: int = 2048
    """Fine-tuning negatives per batch (sampled softmax with logQ; close to the full softmax of the
    tuned baselines on catalogs of ~10-20K items)."""
    ewc_batches: int = 200
    """Source batches for EWC's Fisher estimate."""
    valid_max_users: int = 5000
    """Validation users (fixed seeded sample) for every selection."""
    ft_set: list[str] = field(default_factory=list)
    """Extra `FinetuneConfig` overrides (`key=value`) of every fine-tuning run."""
    baselines: list[str] = field(default_factory=lambda: ["text_ce", "sasrec_ce", "hybrid_ce"])
    """Tuned from-scratch baselines: recipes `configs/train/<target>_<name>.toml`, else Beauty's."""
    baseline_seeds: list[int] = field(default_factory=lambda: [0])
    """Seeds of the tuned baselines."""
    baseline_set: list[str] = field(default_factory=list)
    """Extra `--set` overrides of every baseline run."""
    cell_max_minutes: float = 8.0
    """Time box of one training or fine-tuning cell (`train.max_minutes`, `FinetuneConfig.max_minutes`): it
    then ends at its next validation with a full result, flagged `stopped_by_time`, so no cell outlives a
    10-minute call (fine-tuning cells had no box: at 100% of Beauty, 24 of them beside each other on one
    H200 ran 490-540 s)."""
    continue_cut: bool = True
    """A cell that the time box stopped runs again and continues from its saved state, where this machine
    holds that state (`store.continues`: a fine-tuning cell's resume file, a training cell's state.pt, which
    `scalerec.train.train(extend=True)` continues for another `cell_max_minutes`); its row is replaced once
    it ends. Why: how far a boxed cell gets depends on how many cells share the GPU, so cut cells are not
    like-for-like (at 100% of Beauty, seeds of one method were cut at epochs 26-32 while their scratch pairs
    stopped early at 46-48; pretraining s and m were cut at epochs 15 and 12, still improving)."""
    rare_k: int = 5
    """Rare-item slice: test targets with 1..rare_k training interactions in the target fraction."""
    corpus_max_users: int | None = None
    """Keep only this many users of each pretraining corpus (tiny CPU runs; None = all)."""
    target_max_users: int | None = None
    """Keep only this many users of each target (tiny CPU runs; None = all)."""
    n_boot: int = 1000
    """Bootstrap resamples of every CI and paired difference."""
    flops_per_s: float = 2e13
    """Achieved training FLOP/s assumed by the plan (small models on one H200: stated, not measured)."""
    overhead_s: float = 20.0
    """Per-cell fixed cost assumed by the plan (load, tokenize, validation, test)."""

    def __post_init__(self) -> None:
        if self.key_size not in self.sizes:
            raise ValueError(f"key_size {self.key_size!r} must be one of sizes {self.sizes}")
        if sorted(self.fractions) != self.fractions or not all(0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must be increasing in (0, 1], got {self.fractions}")
        unknown = set(self.strategies) - set(DEFAULT_LR)
        if unknown or not set(self.key_strategies) <= set(self.strategies):
            raise ValueError(f"strategies must be known ({', '.join(DEFAULT_LR)}) and include key_strategies")
        if len(self.pretrain_lrs) < 1 or not self.seeds or not self.ft_lr_mults:
            raise ValueError("pretrain_lrs, seeds and ft_lr_mults must not be empty")
        if any(not grid for grid in self.pretrain_lrs_per_size.values()):
            raise ValueError("pretrain_lrs_per_size: every size needs at least one LR")

    def pretrain_grid(self, size: str) -> list[float]:
        """The pretraining LR grid of one size."""
        return list(self.pretrain_lrs_per_size.get(size, self.pretrain_lrs))

    def ft_lrs(self, strategy: str) -> list[float]:
        """The LR grid of one strategy ([0.0] for zero-shot, which does not train)."""
        if strategy == "zero-shot":
            return [0.0]
        return [float(f"{DEFAULT_LR[strategy] * m:.3g}") for m in self.ft_lr_mults]


@dataclass(frozen=True)
class Cell:
    """One unit of work; `name` is its directory/file name and identity across reruns."""

    kind: CellKind
    target: str
    phase: int
    size: str = ""
    lr: float | None = None
    fraction: float = 1.0
    method: str = ""  # strategy (finetune) or baseline variant
    seed: int = 0
    search: bool = False  # one point of an LR search (not a final configuration by itself)

    @property
    def name(self) -> str:
        lr = "lr?" if self.lr is None else f"lr{self.lr:g}"
        if self.kind == "pretrain":
            return f"pre-{self.target}-{self.size}-{lr}"
        if self.kind == "popular":
            return f"pop-{self.target}-f{self.fraction:g}"
        if self.kind == "baseline":
            return f"base-{self.target}-{self.method}-f{self.fraction:g}-s{self.seed}"
        return f"ft-{self.target}-{self.size}-f{self.fraction:g}-{self.method}-{lr}-s{self.seed}"

    @property
    def group(self) -> str:
        """Cells that compete in one LR search (same everything but the LR)."""
        return dataclasses.replace(self, lr=None).name


def phase1(spec: StudySpec) -> list[Cell]:
    """Pretraining LR searches, tuned baselines and most-popular: nothing to choose before them."""
    cells = [
        Cell("pretrain", t, 1, size, lr, search=True)
        for t in spec.targets
        for size in spec.sizes
        for lr in spec.pretrain_grid(size)
    ]
    cells += [Cell("popular", t, 1, fraction=f) for t in spec.targets for f in spec.fractions]
    cells += [
        Cell("baseline", t, 1, fraction=f, method=b, seed=s)
        for t in spec.targets
        for b in spec.baselines
        for f in spec.fractions
        for s in spec.baseline_seeds
    ]
    return cells


def phase2(spec: StudySpec) -> list[Cell]:
    """Fine-tuning LR search at the key size, first seed."""
    return [
        Cell("finetune", t, 2, spec.key_size, lr, f, s, spec.seeds[0], search=len(spec.ft_lrs(s)) > 1)
        for t in spec.targets
        for f in spec.fractions
        for s in spec.strategies
        for lr in spec.ft_lrs(s)
    ]


def phase3(spec: StudySpec, chosen: dict[str, float | None]) -> list[Cell]:
    """Other sizes at the LR chosen at the key size, and the key cells' other seeds."""
    cells = []
    for t in spec.targets:
        for f in spec.fractions:
            for s in spec.strategies:
                lr = chosen.get(Cell("finetune", t, 2, spec.key_size, None, f, s, spec.seeds[0]).group)
                cells += [
                    Cell("finetune", t, 3, size, lr, f, s, spec.seeds[0])
                    for size in spec.sizes
                    if size != spec.key_size
                ]
                if s in spec.key_strategies:
                    cells += [
                        Cell("finetune", t, 3, spec.key_size, lr, f, s, seed) for seed in spec.seeds[1:]
                    ]
    return cells


def all_cells(spec: StudySpec, chosen: dict[str, float | None] | None = None) -> list[Cell]:
    """Every cell of the study in run order (phase 3 LRs from `chosen`, None where unknown)."""
    return phase1(spec) + phase2(spec) + phase3(spec, chosen or {})


def pretrained_group(target: str, size: str) -> str:
    """The LR-search group of the pretraining runs of (target corpus, size)."""
    return Cell("pretrain", target, 1, size, None).group
