"""The sweep spec: a TOML file that *is* the experiment (sizes × data subsets × seeds × LRs).

A spec expands into a list of fully resolved `RunConfig`s, one per cell of the grid (the data axis:
`subsets`, separate datasets, or `train_fractions`, nested training users of one dataset); each run's
id is the hash of its resolved config (`scalerec.train.build.run_id`), so editing the spec adds
new runs without invalidating finished ones, and rerunning a spec only runs what is missing.

Resolution of one run: size ladder < recipe preset < `train_config` file < `[base]` tables of the
spec < the cell's values (dataset subset, size LR, seed, budget). Loss settings (objective,
negatives, sampler, temperature) go in `[base.train]`.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from scalerec.config import load, merge, read_toml
from scalerec.data.read.fractions import fraction_rows
from scalerec.data.read.sequences import load_sequences
from scalerec.errors import UserError
from scalerec.io import read_json
from scalerec.model.sizes import SIZES
from scalerec.scaling.table import annotate
from scalerec.scaling.wsd_plan import expand_wsd
from scalerec.train.config import resolve_run_config


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
    train_fractions: list[float] = field(default_factory=list, metadata={"range": "(0, 1]"})
    """Data sizes as nested fractions of ONE dataset's training users (`data.train_fraction`), e.g.
    [0.03, 0.1, 0.3, 1]: every point keeps the catalog and the validation/test users, so points differ
    only in training data (labels `f0.03` …; D = that fraction's training targets). Each run keeps
    its own stopping rule (epochs of its own data, early stopping), so a small D can converge.
    Replaces `subsets` as the data axis: at most one subset (the dataset), no `branches`."""
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
    lr_search_per_encoder: dict[str, list[float]] = field(
        default_factory=dict, metadata={"range": "(0, inf)"}
    )
    """Per-encoder multipliers replacing `lr_search` for that twin (e.g. {text = [0.333, 1, 3, 9]}
    when one encoder's optimum sits at the grid's edge). Adding a multiplier keeps every existing
    run's id, so a finished sweep only trains the new points."""
    branches: list[float] = field(default_factory=list, metadata={"range": "(0, 1)"})
    """Warmup-stable-decay design: fractions (< 1) of each run's length at which a cooldown branch
    ends. Each run (the *trunk*) uses the wsd schedule; a branch resumes the trunk's stable phase
    and decays for `decay_frac` of its own length, so one trunk yields len(branches) + 1 D points,
    each recorded as its own row. Needs the run length in steps or targets."""
    decay_frac: float = field(default=0.2, metadata={"range": "(0, 1)"})
    """Cooldown length as a fraction of each run's (trunk's or branch's) total steps."""
    encoders: list[str] = field(default_factory=list)
    """Item encoders run as twins on the same grid (e.g. ["text", "id"]); empty = the base config's."""
    extra_seeds: list[int] = field(default_factory=list, metadata={"range": "[0, inf)"})
    """More seeds for the `extra_seed_sizes` cells only (seed variance at a fraction of the cost)."""
    extra_seed_sizes: list[str] = field(default_factory=list)
    """Sizes that also run `extra_seeds` (e.g. a third of the sizes)."""
    extra_seeds_all_lrs: bool = False
    """Run `extra_seeds` at every LR of the search (False: only at the size's own LR, multiplier 1)."""
    extra_seeds_at_winner: bool = False
    """Run `extra_seeds` at the LR the searched seeds chose, once their search of the (encoder, size,
    data point) cell is finished (`run_sweep`'s second phase), instead of at the size's own LR fixed in
    advance. Why: pooled_v3 ran its extra seeds at the centre, the ID twin's optimum moved to the grid's
    low end, and 13 of 16 extra-seed runs replicated a rejected LR. Needs runs of their own (no
    `branches`); incompatible with `extra_seeds_all_lrs`."""
    size_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Sizes of this sweep beyond the ladder: name → {"base": ladder size, model fields…}, e.g.
    `s2 = {base = "s", n_layers = 2}` (fills the ladder's gaps for an even spread of N)."""
    holdout_sizes: list[str] = field(default_factory=list)
    """Sizes run only as held-out points (`holdout = true` in results.parquet: never fitted, the
    extrapolation test): each at `holdout_scale` × the run length, best fitted LR rule below."""
    holdout_scale: float = field(default=1.0, metadata={"range": "(0, inf)"})
    """Run-length multiplier of the held-out runs (≥ 2× N and ≥ 4× compute of the largest fit)."""
    holdout_lr: float | None = field(default=None, metadata={"range": "(0, 1]"})
    """Peak LR of the held-out runs (None = `lr_per_size` / `lr`; they get no LR search)."""
    holdout_lr_per_encoder: dict[str, float] = field(default_factory=dict, metadata={"range": "(0, 1]"})
    """Peak LR of the held-out runs per twin (e.g. {text = 3e-3, id = 3e-4}), before `holdout_lr`. Why: twins
    whose searched winners sit a decade apart (pooled_v3: text x3-x9, ID x1/3 of the same centre) cannot share
    one held-out LR without handicapping one of them."""
    holdout_lr_search_per_encoder: dict[str, list[float]] = field(
        default_factory=dict, metadata={"range": "(0, inf)"}
    )
    """LR multipliers around a twin's held-out LR (e.g. {text = [0.25, 0.5, 1.0]}): the held-out runs then
    pick their LR per seed on validation, as every fitted cell does, and stay unfitted. Why: pooled_v3b fixed
    the text m's LR in advance from pooled_v3's winners, its own winners fell faster with N, and m ran at ~4x
    the LR they point to, stopped early, and was no extrapolation test. Empty = one LR, fixed in advance."""
    world: dict[str, Any] = field(default_factory=dict)
    """Known-floor world (`scalerec.data.ingest.world.WorldConfig` fields + `eval_users`): the sweep writes
    it to `dataset` (default `<out>/world`) and trains on users streamed from it."""
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
        if any(not 0 < b < 1 for b in self.branches) or not 0 < self.decay_frac < 1:
            raise ValueError("branches must be fractions in (0, 1) and decay_frac in (0, 1)")
        if self.branches and (self.max_steps is None or self.max_flops or self.max_targets):
            raise ValueError("branches need the run length in max_steps (and no max_targets/max_flops)")
        if any(e not in ("text", "id", "hybrid") for e in self.encoders):
            raise ValueError(f"encoders must be 'text', 'id' or 'hybrid', got {self.encoders}")
        for name in ("lr_search_per_encoder", "holdout_lr_search_per_encoder"):
            for enc, mult in getattr(self, name).items():
                if enc not in ("text", "id", "hybrid") or not mult or any(not m > 0 for m in mult):
                    raise ValueError(
                        f"{name}.{enc}: needs an encoder name (text/id/hybrid) and multipliers > 0"
                    )
        if self.holdout_scale <= 0:
            raise ValueError("holdout_scale must be > 0")
        for enc, lr in self.holdout_lr_per_encoder.items():
            if enc not in ("text", "id", "hybrid") or not 0 < lr <= 1:
                raise ValueError(
                    f"holdout_lr_per_encoder.{enc}: needs an encoder name (text/id/hybrid) and 0 < lr <= 1"
                )
        if self.extra_seeds_at_winner and (self.branches or self.extra_seeds_all_lrs):
            raise ValueError(
                "extra_seeds_at_winner runs the extra seeds after the LR search, at its winner: it needs "
                "runs of their own (no `branches`) and cannot be combined with extra_seeds_all_lrs"
            )
        self._check_fractions()
        self._check_holdout_lrs()

        for name, fields in self.size_models.items():
            if fields.get("base") not in SIZES:
                raise ValueError(f"size_models.{name}.base must be a ladder size ({', '.join(SIZES)})")
        for name in [*self.sizes, *self.lr_per_size, *self.extra_seed_sizes, *self.holdout_sizes]:
            if name not in SIZES and name not in self.size_models:
                raise ValueError(f"unknown model size {name!r}; known: {', '.join(SIZES)}")
        unknown = set(self.base) - {"data", "model", "train", "eval", "run"}
        if unknown:
            raise ValueError(f"[base] may only hold data/model/train/eval/run tables, got {sorted(unknown)}")

    def _check_holdout_lrs(self) -> None:
        """A held-out size gets no LR search, so its one LR must be chosen, not inherited. Why: world_v6's
        m2 named none and would have trained its 33,000 steps at the trainer's default 1e-3, an LR no run
        of the sweep ever chose, while its spec said "at the LR rule fitted on the sizes below"."""
        if self.lr is not None or self.holdout_lr is not None or self.train_config is not None:
            return
        if "lr" in self.base.get("train", {}):
            return
        twins = self.encoders or [""]
        for size in self.holdout_sizes:
            if size in self.sizes or size in self.lr_per_size:
                continue
            missing = [e for e in twins if e not in self.holdout_lr_per_encoder]
            if missing:
                raise ValueError(
                    f"held-out size {size!r} has no learning rate"
                    + (f" for encoder(s) {missing}" if missing != [""] else "")
                    + ": set lr_per_size.<size>, holdout_lr or holdout_lr_per_encoder (otherwise it would "
                    "train at the trainer's default LR, which no run of the sweep chose)"
                )

    def _check_fractions(self) -> None:
        fr = self.train_fractions
        if not fr:
            return
        if any(not 0 < f <= 1 for f in fr) or len(set(fr)) != len(fr):
            raise ValueError(f"train_fractions must be distinct fractions in (0, 1], got {fr}")
        if len(self.subsets) > 1:
            raise ValueError(
                f"train_fractions is a data axis over ONE dataset; it cannot be combined with several "
                f"subsets ({self.subsets}): drop `subsets` or list one"
            )
        if self.branches:
            raise ValueError(
                "train_fractions and branches are two D designs; use one (fractions: each D trained "
                "to its own stopping rule; branches: cooldowns of one wsd trunk)"
            )
        if self.world:
            raise ValueError(
                "train_fractions needs a prepared dataset; a [world] streams its training "
                "users (use world.train_users)"
            )


def fraction_label(fraction: float) -> str:
    """Subset label of a training-user fraction in the table: 0.1 → "f0.1", 1 → "f1"."""
    return f"f{fraction:g}"


def data_points(spec: SweepSpec) -> list[tuple[str, str, float | None]]:
    """(label, subset, train_fraction) of each data size: one per subset, or, with `train_fractions`,
    one per fraction of the one subset (fraction None: the subset's whole training split, as before)."""
    if not spec.train_fractions:
        return [(s, s, None) for s in spec.subsets]
    return [(fraction_label(f), spec.subsets[0], f) for f in spec.train_fractions]


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
    """Data-size label: a subset of `subsets`, or `f<fraction>` of `train_fractions`."""
    seed: int
    lr: float
    dataset_dir: str
    cfg: Any
    """`scalerec.train.config.RunConfig` (Any here so this module imports without torch)."""
    n_interactions: int | None = None
    n_users: int | None = None
    role: str = "single"
    """"single" (a run of its own), "trunk" (a wsd run with branches) or "branch" (a cooldown)."""
    trunk_id: str | None = None
    """Branches: the run they resume from, at `branch_step`."""
    branch_step: int | None = None
    holdout: bool = False
    """Never fitted: a point of the extrapolation test."""
    lr_grid: tuple[float, ...] = ()
    """Every LR tried for this size (the LR search this run is one point of)."""
    encoder: str = ""
    """Item encoder of the run ("text" / "id"; the twin it belongs to)."""


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

    data = read_json(card)
    return data.get("n_interactions"), data.get("n_users")


@functools.lru_cache(maxsize=4)
def _user_lengths(dataset_dir: str, mtime_ns: int) -> np.ndarray:
    """History length per user row (read once per plan; the mtime keys out a rewritten dataset)."""
    return load_sequences(dataset_dir).lengths()


def _fraction_counts(dataset_dir: Path, fraction: float) -> tuple[int | None, int | None]:
    """(interactions, users) of the users a `train_fraction` run keeps: exact from the interactions
    (the rows `data.train_fraction` trains on), else the card's counts scaled."""
    path = dataset_dir / "interactions.parquet"
    if path.is_file():
        lengths = _user_lengths(str(dataset_dir), path.stat().st_mtime_ns)
        rows = fraction_rows(len(lengths), fraction)
        return int(lengths[rows].sum()), len(rows)
    n_inter, n_users = _card_counts(dataset_dir)
    if n_inter is None or n_users is None:
        return None, None
    return round(n_inter * fraction), len(fraction_rows(n_users, fraction))


def _budget(spec: SweepSpec, scale: float = 1.0) -> dict[str, Any]:
    if scale == 1.0:
        return {
            "epochs": spec.epochs if spec.epochs is not None else 1.0,
            "max_steps": spec.max_steps,
            "max_targets": spec.max_targets,
            "max_flops": spec.max_flops,
        }
    return {
        "epochs": spec.epochs * scale if spec.epochs is not None else 1.0,
        "max_steps": round(spec.max_steps * scale) if spec.max_steps is not None else None,
        "max_targets": round(spec.max_targets * scale) if spec.max_targets is not None else None,
        "max_flops": spec.max_flops * scale if spec.max_flops is not None else None,
    }


def lr_multipliers(spec: SweepSpec, encoder: str = "") -> list[float]:
    """The LR search of one twin: its `lr_search_per_encoder` entry, else `lr_search`."""
    return list(spec.lr_search_per_encoder.get(encoder, spec.lr_search))


def _lrs(spec: SweepSpec, size: str, default_lr: float, encoder: str = "") -> list[float]:
    base = spec.lr_per_size.get(size, spec.lr if spec.lr is not None else default_lr)
    mult = lr_multipliers(spec, encoder)
    return [base * m for m in mult] if mult else [base]


def _cells(
    spec: SweepSpec, size: str, default_lr: float, encoder: str = ""
) -> tuple[bool, list[float], list[int]]:
    """(held out?, LRs, seeds) of one size."""
    holdout = size in spec.holdout_sizes and size not in spec.sizes
    if holdout:
        base = spec.lr_per_size.get(size, spec.lr if spec.lr is not None else default_lr)
        fixed = spec.holdout_lr_per_encoder.get(encoder, spec.holdout_lr)
        centre = fixed if fixed is not None else base
        lrs = [centre * m for m in spec.holdout_lr_search_per_encoder.get(encoder, [1.0])]
    else:
        lrs = _lrs(spec, size, default_lr, encoder)
    seeds = list(spec.seeds) + (list(spec.extra_seeds) if size in spec.extra_seed_sizes else [])
    return holdout, lrs, list(dict.fromkeys(seeds))


Winners = dict[tuple[str, str, str], float]
"""(encoder, size, data-point label) → the LR the searched seeds chose (`search_winners`)."""
CENTRE = "centre"
"""`plan_runs(winners=CENTRE)`: plan extra seeds at the size's own LR (a dry run's cost estimate of
`extra_seeds_at_winner` before any search has finished)."""


def _seeds_at(
    spec: SweepSpec,
    lr_index: int,
    lrs: list[float],
    seeds: list[int],
    encoder: str = "",
    winner: float | str | None = None,
) -> list[int]:
    """Seeds run at the `lr_index`-th LR: all at the size's own LR, only `seeds` elsewhere unless
    `extra_seeds_all_lrs`. With `extra_seeds_at_winner` the extra seeds run only at `winner` (the
    search's choice; CENTRE = the size's own LR; None = not known yet, so none)."""
    n_lrs = len(lrs)
    mult = lr_multipliers(spec, encoder)
    own = mult.index(1.0) if 1.0 in mult else n_lrs // 2
    searched = [s for s in seeds if s in spec.seeds]
    if spec.extra_seeds_at_winner and n_lrs > 1 and len(searched) < len(seeds):  # one LR: nothing to wait for
        at = lrs[own] if winner == CENTRE else winner
        if isinstance(at, float) and math.isclose(lrs[lr_index], at, rel_tol=1e-6):
            return seeds
        return searched
    if spec.extra_seeds_all_lrs or n_lrs == 1 or lr_index == own:
        return seeds
    return searched


def _finite(v: Any) -> bool:
    return v is not None and math.isfinite(float(v))


def search_winners(spec: SweepSpec, rows: list[dict[str, Any]]) -> Winners:
    """Per (encoder, size, data point), the LR the searched seeds (`spec.seeds`) chose on validation loss,
    once every one of them has a finished run at every LR of the cell: the LR most of them chose, ties
    to the lower mean loss over those seeds. Each seed's choice is `table.annotate`'s `lr_selected`, the
    rule the fit reads, so the winner is always one seed's own choice and the extra seeds run there stay
    LR winners. A cell with a failed or missing search run has no winner (its extra seeds are not run)."""
    cells: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in annotate(rows):
        if not r.get("holdout") and int(r["seed"]) in spec.seeds:
            cells[(str(r.get("encoder") or ""), str(r["size"]), str(r["subset"]))].append(r)
    winners: Winners = {}
    for key, group in cells.items():
        # lr_grid is written with 6 significant digits: match each grid point to the runs' exact LRs
        grid = sorted({float(x) for x in str(group[0].get("lr_grid") or "").split(",") if x})
        ok = [r for r in group if r.get("status") == "ok" and _finite(r.get("valid_loss"))]
        done = {
            (int(r["seed"]), i)
            for r in ok
            for i, g in enumerate(grid)
            if math.isclose(float(r["lr"]), g, rel_tol=1e-5)
        }
        if not grid or len(done) < len(spec.seeds) * len(grid):
            continue
        loss = {(int(r["seed"]), round(float(r["lr"]), 12)): float(r["valid_loss"]) for r in ok}
        picks = [round(float(r["lr"]), 12) for r in group if r["lr_selected"]]
        mean = {lr: sum(loss[(s, lr)] for s in spec.seeds) / len(spec.seeds) for lr in set(picks)}
        winners[key] = sorted(set(picks), key=lambda lr: (-picks.count(lr), mean[lr], lr))[0]
    return winners


def _model_base(spec: SweepSpec, size: str) -> tuple[str, dict[str, Any]]:
    """(ladder size, model field overrides) of a sweep size."""
    if size not in spec.size_models:
        return size, {}
    fields = dict(spec.size_models[size])
    return fields.pop("base"), fields


SWEEP_DIR_TOKEN = "$SWEEP"
"""How a path inside the sweep dir enters a run id (`sweep_run_id`)."""


def _inside(path: str | None, root: Path) -> str | None:
    """`path` written as `$SWEEP/<relative>` when it lies inside `root`, else unchanged."""
    if not path:
        return path
    try:
        rel = Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return path
    return f"{SWEEP_DIR_TOKEN}/{rel.as_posix()}"


def sweep_run_id(cfg: Any, out_dir: str | Path) -> str:
    """A run's id inside a sweep: `build.run_id` of its config, with a dataset or token table that lies
    inside the sweep dir (a `[world]` sweep's own world, written to `<out>/world`) hashed by its place in
    the sweep dir rather than its absolute path. Why: otherwise moving or copying a sweep dir (to another
    machine, or to a new name) changed every id, and the sweep trained everything again instead of
    resuming. Datasets outside the sweep dir keep their path in the id: a different path may hold a
    different dataset."""
    root = Path(out_dir)
    return legacy_run_id(cfg, _inside(cfg.data.dataset, root), _inside(cfg.data.tokens, root))


def legacy_run_id(cfg: Any, dataset: str | None = None, tokens: str | None = None) -> str:
    """`build.run_id` with the config's dataset / token paths replaced (None: kept as they are). Kept as
    they are, this is the id a run had before `sweep_run_id`; with the paths an older sweep.json recorded,
    the id it had where the sweep dir lay then (`sweep.adopt_legacy_dirs`)."""
    import dataclasses

    from scalerec.train import build

    data = dataclasses.replace(
        cfg.data,
        dataset=dataset if dataset is not None else cfg.data.dataset,
        tokens=tokens if tokens is not None else cfg.data.tokens,
    )
    return build.run_id(dataclasses.replace(cfg, data=data))


def plan_runs(
    spec: SweepSpec,
    out_dir: str | Path,
    winners: Winners | str | None = None,
    unknown: str | None = None,
) -> list[PlannedRun]:
    """Expand the spec into resolved runs (sizes × subsets × seeds × LRs, + wsd branches, + held-out
    runs), in that order; a wsd trunk comes right before its branches. With `extra_seeds_at_winner`,
    `winners` (`search_winners`, or CENTRE) places the extra seeds; without it they are left out.
    `unknown` (CENTRE or None) places them in a cell that `winners` has no winner for yet: a dry run
    that knows some searches' results plans those cells at their winners and the others at the centre."""

    out_dir = Path(out_dir)
    file_base = read_toml(spec.train_config) if spec.train_config else {}
    common = merge(file_base, spec.base)  # runs are tracked like any `train` run (<out>/runs/mlruns)
    runs: list[PlannedRun] = []
    for label, subset, fraction in data_points(spec):
        ddir = subset_dir(spec, subset)
        if not ddir.is_dir():
            raise UserError(f"sweep subset '{subset}': dataset dir {ddir} does not exist")
        n_inter, n_users = _card_counts(ddir) if fraction is None else _fraction_counts(ddir, fraction)
        sizes = list(dict.fromkeys([*spec.sizes, *spec.holdout_sizes]))
        for encoder, size in [(e, z) for e in spec.encoders or [""] for z in sizes]:
            ladder, model = _model_base(spec, size)
            model = {**model, "item_encoder": encoder} if encoder else model
            sized = merge(common, {"model": model}) if model else common
            probe = resolve_run_config(size=ladder, recipe=spec.recipe, base=sized)
            holdout, lrs, seeds = _cells(spec, size, probe.train.lr, encoder)
            key = (encoder or str(probe.model.item_encoder), size, label)
            winner = winners if isinstance(winners, str) else (winners or {}).get(key, unknown)
            for i, lr in enumerate(lrs):
                for seed in _seeds_at(spec, i, lrs, seeds, encoder, winner):
                    tok = spec.tokens.replace("{subset}", subset) if spec.tokens else None
                    data: dict[str, Any] = {"dataset": str(ddir), **({"tokens": tok} if tok else {})}
                    if fraction is not None:  # at 1: the id of the plain run on the dataset
                        data["train_fraction"] = fraction
                    cell = {
                        "data": data,
                        "train": {**_budget(spec, spec.holdout_scale if holdout else 1.0), "lr": lr},
                        "run": {
                            "seed": seed,
                            "out": str(out_dir / "runs"),
                            "device": spec.device,
                            "progress": False,
                        },
                    }
                    cfg = resolve_run_config(size=ladder, recipe=spec.recipe, base=merge(sized, cell))
                    head = PlannedRun("", size, label, seed, lr, str(ddir), cfg, n_inter, n_users)
                    head.holdout, head.lr_grid, head.encoder = holdout, tuple(lrs), cfg.model.item_encoder
                    group = expand_wsd(spec, head, with_branches=not holdout) if spec.branches else [head]
                    for run in group:
                        run.run_id = run.cfg.run.name = sweep_run_id(run.cfg, out_dir)
                    for run in group[1:]:
                        run.trunk_id = group[0].run_id
                    runs += group
    return runs
