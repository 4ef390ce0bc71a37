"""Run one cell of the study with the library's own entry points and turn it into a row.

- pretraining: `scalerec.train.train` on the target's leave-one-domain-out corpus (text encoder, the
  size's ladder entry, one LR of the grid, early stopping on the corpus's validation split);
- fine-tuning: `scalerec.transfer.finetune.finetune` from the checkpoint whose LR won on validation,
  with `target_fraction` (nested training users; validation and test use every user);
- tuned baseline: `scalerec.train.train` with the target's recipe on the fraction's dataset dir
  (`corpora.fraction_dataset`), then ranked on the *full* target's test users like every other cell;
- most-popular: training counts of the fraction.

Every row carries the same test blocks (`overall`, `cold` = target never in the fraction's training
interactions, `rare` = 1..`rare_k` of them), computed by `scalerec.transfer.evaluation` from per-user
ranks on the same test users, so any two cells of a target can be compared pairwise. Test ranks are
stored for every cell, but only validation numbers are read to choose (see `store.choose_lr`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.transfer.study.cells import Cell, StudySpec, pretrained_group
from scalerec.transfer.study.store import Store, checkpoint_version, needs_run, run_continues


@dataclasses.dataclass
class Context:
    """What every cell needs: the grid, where things are, the device and the choices so far."""

    spec: StudySpec
    work: Path
    layout: dict[str, Any]  # written by the prepare step: dataset/corpus/token/fraction dirs per target
    device: str
    root: Path  # repository root (recipes under configs/train)
    chosen: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    missing: set[str] = dataclasses.field(default_factory=set)
    """Chosen pretraining cells whose weights this machine lacks (`runner.holds_checkpoint`)."""
    pretraining: set[str] = dataclasses.field(default_factory=set)
    """Pretraining LR-search groups with a cell still to run (fine-tuning on them waits)."""

    def paths(self, target: str) -> dict[str, Any]:
        return self.layout["targets"][target]


@lru_cache(maxsize=16)
def _slices(dataset: str, fraction: float, rare_k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(most-popular test ranks, cold mask, rare mask) of the target's test users at `fraction`."""
    from scalerec.transfer import evaluation as ev
    from scalerec.transfer.domain import load_domain, with_fraction

    dom = with_fraction(load_domain(dataset, None), fraction)
    tgt = dom.split.test[1]
    pop = dom.popularity[np.asarray(tgt, dtype=np.int64)]
    return ev.most_popular_ranks(dom.popularity, tgt), pop == 0, (pop >= 1) & (pop <= rare_k)


def _blocks(ranks: np.ndarray, cold: np.ndarray, rare: np.ndarray, encoder: str, n_boot: int) -> dict:
    from scalerec.transfer import evaluation as ev

    out = ev.split_blocks(ranks, cold, encoder, n_boot)
    out["rare"] = ev.metric_block(ranks[rare], n_boot)
    return out


def _row(cell: Cell, ranks: np.ndarray, encoder: str, ctx: Context, **extra: Any) -> tuple[dict, dict]:
    pop, cold, rare = _slices(ctx.paths(cell.target)["dataset"], cell.fraction, ctx.spec.rare_k)
    if len(ranks) != len(pop):
        raise RuntimeError(f"{cell.name}: {len(ranks)} test ranks, expected {len(pop)} test users")
    row = {
        "kind": cell.kind,
        "target": cell.target,
        "size": cell.size,
        "lr": cell.lr,
        "fraction": cell.fraction,
        "method": cell.method,
        "seed": cell.seed,
        "phase": cell.phase,
        "search": cell.search,
        "encoder": encoder,
        "test": _blocks(ranks, cold, rare, encoder, ctx.spec.n_boot),
        "most_popular": _blocks(pop, cold, rare, "popular", 0)["overall"],
        **extra,
    }
    return row, {"test": ranks, "cold": cold, "rare": rare, "most_popular": pop}


def _train_row(final: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    return {
        "valid_ndcg@10": (final.get("valid") or {}).get("ndcg@10"),
        "flops": final["flops"]["total"],
        "wall_s": final.get("wall_time_s"),
        "targets_seen": final.get("targets_seen"),
        "epochs": final.get("epochs"),
        "best_step": final.get("best_step"),
        "stopped_by_time": bool(final.get("stopped_by_time")),
        "run_dir": str(run_dir),
        "params_non_embedding": (final.get("params") or {}).get("non_embedding"),
    }


def _train(
    overrides: list[str], size: str | None, toml: Path | None, run_dir: Path, ctx: Context
) -> dict[str, Any]:
    """`scalerec.train.train` unless the run finished before; an interrupted run resumes from its last
    checkpoint, and one killed before its first checkpoint is trained again (staged beside the old dir,
    which is replaced only once the new run finishes: the dir is this cell's own). A finished run that the
    time box cut is extended by another box (`StudySpec.continue_cut`) where this machine holds its state."""
    from scalerec.train import train
    from scalerec.train.config import resolve_run_config

    final_path = run_dir / "final.json"
    if not final_path.is_file():
        cfg = resolve_run_config(toml, overrides, size=size)
        resume = (run_dir / "state.pt").is_file()
        train(cfg, resume=resume, overwrite=not resume)
    elif ctx.spec.continue_cut and run_continues(run_dir):
        spent_min = float(json.loads(final_path.read_text()).get("wall_time_s") or 0.0) / 60.0
        box = f"train.max_minutes={spent_min + ctx.spec.cell_max_minutes}"
        train(resolve_run_config(toml, [*overrides, box], size=size), extend=True)
    return json.loads(final_path.read_text())


def _common(ctx: Context, cell: Cell) -> list[str]:
    return [
        f"run.out={ctx.work / 'runs'}",
        f"run.name={cell.name}",
        f"run.seed={cell.seed}",
        f"run.device={'cuda' if ctx.device.startswith('cuda') else ctx.device}",
        "run.progress=false",
        "run.tracking_uri=off",
        f"eval.max_users={ctx.spec.valid_max_users}",
        f"train.max_minutes={ctx.spec.cell_max_minutes}",
    ]


def pretrain(cell: Cell, ctx: Context) -> tuple[dict, dict | None]:
    s, p = ctx.spec, ctx.paths(cell.target)
    sets = [
        f"data.dataset={p['corpus']}",
        f"data.tokens={p['corpus_tokens']}",
        f"data.max_len={s.max_len}",
        f"model.max_len={s.max_len}",
        "model.item_encoder=text",
        f"train.epochs={s.pretrain_epochs}",
        f"train.lr={cell.lr}",
        f"train.batch_size={s.pretrain_batch}",
        f"train.loss={s.pretrain_loss}",
        f"train.negatives={s.pretrain_negatives}",
        f"eval.patience={s.pretrain_patience}",
        *_common(ctx, cell),
        *s.pretrain_set,
    ]
    run_dir = ctx.work / "runs" / cell.name
    final = _train(sets, cell.size, None, run_dir, ctx)
    row = {
        "kind": cell.kind,
        "target": cell.target,
        "size": cell.size,
        "lr": cell.lr,
        "phase": cell.phase,
        "search": cell.search,
        "lr_grid": s.pretrain_grid(cell.size),
        "seed": cell.seed,
        **_train_row(final, run_dir),
    }
    return row, None


def _pretrained(cell: Cell, ctx: Context) -> tuple[Path, Any]:
    """The chosen pretraining run's dir and the version of its weights (`store.checkpoint_version`)."""
    choice = ctx.chosen.get(pretrained_group(cell.target, cell.size))
    if choice is None:
        raise RuntimeError(
            f"{cell.name}: the pretraining LR search of {cell.target}/{cell.size} is not finished"
        )
    return ctx.work / "runs" / choice["cell"], choice.get("version")


def finetune(cell: Cell, ctx: Context) -> tuple[dict, dict | None]:
    from scalerec.config import load
    from scalerec.transfer.finetune import FinetuneConfig
    from scalerec.transfer.finetune import finetune as run_finetune

    s, (pre, version) = ctx.spec, _pretrained(cell, ctx)
    out = ctx.work / "ft" / cell.name
    sets = [
        f"pretrained={pre}",
        f"data={ctx.paths(cell.target)['dataset']}",
        f"out={out}",
        f"strategy={cell.method}",
        f"target_fraction={cell.fraction}",
        f"epochs={s.ft_epochs}",
        f"stage_epochs={s.stage_epochs}",
        f"batch_size={s.ft_batch}",
        f"n_negatives={s.ft_negatives}",
        f"patience={s.ft_patience}",
        f"min_epochs={s.ft_min_epochs}",
        f"max_minutes={s.cell_max_minutes}",
        f"valid_max_users={s.valid_max_users}",
        f"ewc_batches={s.ewc_batches}",
        f"seed={cell.seed}",
        f"device={ctx.device}",
        f"n_boot={s.n_boot}",
        "progress=false",
        "tracking_uri=off",
        f"pretrained_root={ctx.work / 'runs'}",
        *s.ft_set,
    ]
    if cell.method != "zero-shot":
        sets.append(f"lr={cell.lr}")
    summary = run_finetune(load(FinetuneConfig, overrides=sets))
    with np.load(out / "ranks.npz") as npz:
        ranks = npz["test"]
    extra = {
        "valid_ndcg@10": (summary.get("valid") or {}).get("ndcg@10"),
        "flops": summary.get("flops", 0.0),
        "wall_s": summary.get("wall_time_s"),
        "targets_seen": summary.get("targets_seen"),
        "best_epoch": summary.get("best_epoch"),
        "stopped_early": summary.get("stopped_early"),
        "stopped_by_time": bool(summary.get("stopped_by_time")),
        "pretrained": pre.name,
        "pretrained_version": version,
        "pretrained_params": summary.get("pretrained_params"),
        "source": summary.get("source"),
        "run_dir": str(out),
        "lr_grid": s.ft_lrs(cell.method) if cell.phase == 2 else [cell.lr],
    }
    return _row(cell, ranks, str(summary.get("item_encoder", "text")), ctx, **extra)


def recipe(root: Path, target: str, variant: str) -> Path:
    """`configs/train/<target>_<variant>.toml`, else Beauty's (as benchmarks/accuracy.py does)."""
    own = root / "configs" / "train" / f"{target}_{variant}.toml"
    return own if own.is_file() else root / "configs" / "train" / f"beauty_{variant}.toml"


def baseline(cell: Cell, ctx: Context) -> tuple[dict, dict | None]:
    from scalerec.rundir import load_run
    from scalerec.transfer import evaluation as ev
    from scalerec.transfer.domain import load_domain

    p = ctx.paths(cell.target)
    data = p["dataset"] if cell.fraction >= 1 else p["fractions"][f"{cell.fraction:g}"]
    text = not cell.method.startswith("sasrec")
    sets = [
        f"data.dataset={data}",
        *([f"data.tokens={p['target_tokens']}"] if text else []),
        *_common(ctx, cell),
        *ctx.spec.baseline_set,
    ]
    run_dir = ctx.work / "runs" / cell.name
    final = _train(sets, None, recipe(ctx.root, cell.target, cell.method), run_dir, ctx)
    loaded = load_run(run_dir, device=ctx.device)
    test_hist, test_tgt = load_domain(p["dataset"], None).split.test
    ranks = ev.rank_targets(loaded.model, test_hist, test_tgt, loaded.model.cfg.max_len, 512, ctx.device)
    extra = {**_train_row(final, run_dir), "recipe": str(recipe(ctx.root, cell.target, cell.method))}
    return _row(cell, ranks, loaded.model.cfg.item_encoder, ctx, **extra)


def popular(cell: Cell, ctx: Context) -> tuple[dict, dict | None]:
    pop, _, _ = _slices(ctx.paths(cell.target)["dataset"], cell.fraction, ctx.spec.rare_k)
    return _row(cell, pop, "popular", ctx)


RUNNERS = {"pretrain": pretrain, "finetune": finetune, "baseline": baseline, "popular": popular}


def run_cell(cell: Cell, ctx: Context, store: Store) -> dict[str, Any]:
    """Run `cell` (unless done and current) and save its row; returns the row."""
    old = json.loads(store.row_path(cell).read_text()) if store.done(cell) else None
    if old is not None and not needs_run(old, ctx.chosen, ctx.spec.continue_cut):
        return old
    t0 = time.perf_counter()
    row, ranks = RUNNERS[cell.kind](cell, ctx)
    row["cell_wall_s"] = round(time.perf_counter() - t0, 1)
    if old is not None and cell.kind == "pretrain":  # an extended run: rows built on it name a version
        row["first_version"] = old.get("first_version", checkpoint_version(old))
    store.write(cell, row, ranks)
    return row
