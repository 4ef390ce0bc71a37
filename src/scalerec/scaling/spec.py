"""The sweep spec: a TOML file that *is* the experiment (sizes × data subsets × seeds × LRs).

A spec expands into a list of fully resolved `RunConfig`s, one per cell of the grid; each run's
id is the hash of its resolved config (`scalerec.train.build.run_id`), so editing the spec adds
new runs without invalidating finished ones, and rerunning a spec only runs what is missing.

Resolution of one run: size ladder < recipe preset < `train_config` file < `[base]` tables of the
spec < the cell's values (dataset subset, size LR, seed, budget). Loss settings (objective,
negatives, sampler, temperature) go in `[base.train]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scalerec.config import load, merge, read_toml
from scalerec.errors import UserError


@dataclass
class SweepSpec:
    """One scaling sweep: the grid, the run length, and the base training recipe."""

    dataset: str = ""
    """Dataset dir from `scalerec data prepare` (relative paths: against the current directory)."""
    tokens: str | None = None
    """Token table dir from `scalerec text train` (needed by the text item encoder); subsets renumber
    items, so each needs its own table: "{subset}" in the path is replaced by the subset label."""
    sizes: list[str] = field(default_factory=lambda: ["tiny", "xs"])
    """Model sizes from the ladder `scalerec.model.sizes.SIZES`."""
    subsets: list[str] = field(default_factory=lambda: ["full"])
    """Data sizes: labels of `<dataset>/subsets/<label>`, "full" for the dataset itself, or dir paths."""
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"range": "[0, inf)"})
    """Seeds; every (size, subset) cell runs once per seed."""
    recipe: Literal["default", "paper"] = "default"
    """Training recipe preset each run starts from."""
    train_config: str | None = None
    """Optional base run TOML (same format as `scalerec train --config`)."""
    epochs: float | None = field(default=None, metadata={"range": "(0, inf)"})
    """Run length in epochs of the run's subset (the classic 'D grows with the subset' design)."""
    max_steps: int | None = field(default=None, metadata={"range": "[1, inf)"})
    """Run length in optimizer steps."""
    max_targets: int | None = field(default=None, metadata={"range": "[1, inf)"})
    """Run length in training targets."""
    max_flops: float | None = field(default=None, metadata={"range": "(0, inf)"})
    """Run length in training FLOPs (iso-FLOP designs); precedence flops > targets > steps > epochs."""
    lr: float | None = field(default=None, metadata={"range": "(0, 1]"})
    """Peak LR for every size (None = the recipe's)."""
    lr_per_size: dict[str, float] = field(default_factory=dict, metadata={"range": "(0, 1]"})
    """Peak LR per size name, overriding `lr`."""
    lr_search: list[float] = field(default_factory=list, metadata={"range": "(0, inf)"})
    """Multipliers of each size's LR to try (e.g. [0.5, 1, 2]); fits keep the best by validation."""
    base: dict[str, Any] = field(default_factory=dict)
    """RunConfig tables applied to every run: [base.train] (loss settings), [base.model], [base.eval], …"""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Training device of every run."""
    est_flops_per_s: float = field(default=2e12, metadata={"range": "(0, inf)"})
    """Achieved training FLOP/s assumed by --dry-run before any run has finished (then measured)."""
    est_overhead_s: float = field(default=5.0, metadata={"range": "[0, inf)"})
    """Per-run fixed cost (data loading, evaluation) assumed by --dry-run."""

    def __post_init__(self) -> None:
        if not self.sizes or not self.subsets or not self.seeds:
            raise ValueError("sizes, subsets and seeds must each list at least one value")
        if all(v is None for v in (self.epochs, self.max_steps, self.max_targets, self.max_flops)):
            raise ValueError("set one of epochs, max_steps, max_targets, max_flops")
        if any(m <= 0 for m in self.lr_search) or any(v <= 0 for v in self.lr_per_size.values()):
            raise ValueError("learning rates and lr_search multipliers must be > 0")
        from scalerec.model.sizes import SIZES

        for name in [*self.sizes, *self.lr_per_size]:
            if name not in SIZES:
                raise ValueError(f"unknown model size {name!r}; known: {', '.join(SIZES)}")
        unknown = set(self.base) - {"data", "model", "train", "eval", "run"}
        if unknown:
            raise ValueError(f"[base] may only hold data/model/train/eval/run tables, got {sorted(unknown)}")


def load_spec(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Read a sweep TOML (+ `--set` overrides); relative paths resolve against the current directory
    (like every other path on the command line), and are stored absolute so run ids do not depend on it."""
    spec = load(SweepSpec, toml=Path(path), overrides=overrides)
    for name in ("dataset", "tokens", "train_config"):
        value = getattr(spec, name)
        if value and not Path(value).is_absolute():
            setattr(spec, name, str(Path(value).resolve()))
    return spec


@dataclass
class PlannedRun:
    """One cell of the sweep, resolved: what it trains on and its full config."""

    run_id: str
    size: str
    subset: str
    seed: int
    lr: float
    dataset_dir: str
    cfg: Any
    """`scalerec.train.config.RunConfig` (Any here so this module imports without torch)."""
    n_interactions: int | None = None
    n_users: int | None = None


def subset_dir(spec: SweepSpec, subset: str) -> Path:
    """Where one data size lives: `<dataset>/subsets/<label>`, the dataset itself, or a path."""
    if subset in ("", "full"):
        return Path(spec.dataset)
    labelled = Path(spec.dataset) / "subsets" / subset
    if labelled.is_dir() or not Path(subset).is_dir():
        return labelled
    return Path(subset)


def _card_counts(dataset_dir: Path) -> tuple[int | None, int | None]:
    card = dataset_dir / "card.json"
    if not card.is_file():
        return None, None
    from scalerec.io import read_json

    data = read_json(card)
    return data.get("n_interactions"), data.get("n_users")


def _budget(spec: SweepSpec) -> dict[str, Any]:
    return {
        "epochs": spec.epochs if spec.epochs is not None else 1.0,
        "max_steps": spec.max_steps,
        "max_targets": spec.max_targets,
        "max_flops": spec.max_flops,
    }


def _lrs(spec: SweepSpec, size: str, default_lr: float) -> list[float]:
    base = spec.lr_per_size.get(size, spec.lr if spec.lr is not None else default_lr)
    return [base * m for m in spec.lr_search] if spec.lr_search else [base]


def plan_runs(spec: SweepSpec, out_dir: str | Path) -> list[PlannedRun]:
    """Expand the spec into resolved runs (sizes × subsets × seeds × LRs), smallest compute first."""
    from scalerec.train import build
    from scalerec.train.config import resolve_run_config

    out_dir = Path(out_dir)
    file_base = read_toml(spec.train_config) if spec.train_config else {}
    common = merge(file_base, spec.base)  # runs are tracked like any `train` run (<out>/runs/mlruns)
    runs = []
    for subset in spec.subsets:
        ddir = subset_dir(spec, subset)
        if not ddir.is_dir():
            raise UserError(f"sweep subset '{subset}': dataset dir {ddir} does not exist")
        n_inter, n_users = _card_counts(ddir)
        for size in spec.sizes:
            probe = resolve_run_config(size=size, recipe=spec.recipe, base=common)
            for lr in _lrs(spec, size, probe.train.lr):
                for seed in spec.seeds:
                    tok = spec.tokens.replace("{subset}", subset) if spec.tokens else None
                    data = {"dataset": str(ddir), **({"tokens": tok} if tok else {})}
                    cell = {
                        "data": data,
                        "train": {**_budget(spec), "lr": lr},
                        "run": {
                            "seed": seed,
                            "out": str(out_dir / "runs"),
                            "device": spec.device,
                            "progress": False,
                        },
                    }
                    cfg = resolve_run_config(size=size, recipe=spec.recipe, base=merge(common, cell))
                    rid = build.run_id(cfg)
                    cfg.run.name = rid
                    runs.append(PlannedRun(rid, size, subset, seed, lr, str(ddir), cfg, n_inter, n_users))
    return runs
