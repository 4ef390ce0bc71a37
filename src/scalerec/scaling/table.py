"""Columns of results.parquet that describe the design, not one run: D, LR choice, seed spread.

The contract with the fits (`scaling.fits`), one row per run:
- `unique_targets` is D: distinct training targets the run saw (a streamed world never repeats one;
  a dataset repeats its training targets every epoch: D is then final.json's exact
  `unique_train_targets`, capped by targets_seen). `epochs` = targets_seen / unique_targets.
- `train_fraction`, `train_users_kept`: the nested share of the dataset's training users a run trained
  on (`data.train_fraction`; 1 = all) and how many users with a target that kept (dataset runs).
- `valid_*` is the validation at the end of the run (the point its D and FLOPs describe);
  `best_valid_*` the best validation of `final.json` (by `eval.monitor`: NDCG@10 unless set).
- `encoder`: "text" or "id" (twins of one grid); a cell is always within one encoder.
- `lr_selected`: the run is the best LR of its (encoder, size, subset, seed) cell by end-of-run validation
  loss; `lr_at_edge`: that winner is the smallest or largest LR tried (the grid should be widened),
  null when only one LR was tried. A seed that ran one LR only while other seeds of its (encoder, size,
  subset) searched is selected only if a searched seed chose the same LR. Fit only `lr_selected` rows.
- `holdout`: never fitted; the extrapolation test's runs (beyond the fitted N and compute).
- `n_seeds`, `seed_mean_valid_loss`, `seed_std_valid_loss`: spread over seeds of the same
  (size, subset, LR) cell, on every row of the cell (std null with one seed).
- `bayes_floor`: the known optimal validation loss (world datasets only); `eval_floor`: the optimal
  predictor's loss on the sweep's own evaluation users at the validation item (worlds written since it
  was recorded), the value every run is in fact scored against.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from scalerec.io import read_json


def data_columns(run: Any, final: dict[str, Any]) -> dict[str, Any]:
    """unique_targets, epochs, and train_fraction / train_users_kept (a dataset) or bayes_floor (a
    world) of one finished run."""
    seen = int(final.get("targets_seen") or 0)
    world = Path(run.dataset_dir) / "world.json"
    if world.is_file():
        meta = read_json(world)
        cap = run.cfg.data.train_users
        unique = seen if cap is None else min(seen, cap * (meta["world"]["length"] - 1))
        extra = {"bayes_floor": meta["bayes_floor"], "train_floor": meta["train_floor"]}
        if "eval_floor" in meta:  # worlds written before it was recorded lack it
            extra["eval_floor"] = meta["eval_floor"]["valid"]
    else:
        per_epoch = final.get("unique_train_targets")
        if per_epoch is None:  # a final.json from before the trainer recorded it
            epochs = float(final.get("epochs") or 0.0)
            per_epoch = seen / epochs if epochs > 0 else seen
        unique = int(min(seen, round(per_epoch)))
        extra = {
            "train_fraction": float(final.get("train_fraction", run.cfg.data.train_fraction)),
            "train_users_kept": final.get("train_users_kept"),
        }
    return {"unique_targets": unique, "epochs": seen / unique if unique else math.nan, **extra}


def _loss(row: dict[str, Any]) -> float:
    v = row.get("valid_loss")
    return float(v) if v is not None and math.isfinite(v) else math.inf


def _lrs(group: list[dict[str, Any]]) -> set[float]:
    return {round(float(r["lr"]), 12) for r in group}


def _unselect_untuned_replicates(cells: dict[tuple, list[dict[str, Any]]]) -> None:
    """A seed that ran one LR only, beside seeds of its (encoder, size, subset) that searched, is a
    replicate of a configuration fixed before the search (`extra_seeds` run at the grid's centre). It is
    an LR winner only when a searched seed chose that LR too; otherwise it replicates a loser, and fitting
    it as a winner mixes an untuned run into the law (pooled_v3: the ID twin's optimum moved to the grid's
    low end, and its extra seeds sat 0.3-1.3 nats above their searched siblings)."""
    families: dict[tuple, list[list[dict[str, Any]]]] = defaultdict(list)
    for (encoder, size, subset, _seed, holdout), group in cells.items():
        families[(encoder, size, subset, holdout)].append(group)
    for groups in families.values():
        searched = [g for g in groups if len(_lrs(g)) >= 2]
        chosen = {round(float(r["lr"]), 12) for g in searched for r in g if r["lr_selected"]}
        for g in groups:
            if searched and len(_lrs(g)) == 1 and not _lrs(g) <= chosen:
                for r in g:
                    r["lr_selected"] = False


def annotate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of `rows` with the LR-selection and seed-spread columns filled in."""
    rows = [dict(r) for r in rows]
    cells: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        r["lr_selected"], r["lr_at_edge"] = False, None
        if r.get("status") == "ok":
            cells[(r.get("encoder"), r["size"], r["subset"], r["seed"], bool(r.get("holdout")))].append(r)
    for group in cells.values():
        best = min(group, key=_loss)
        best["lr_selected"] = True
        grid = sorted({float(x) for x in str(best.get("lr_grid") or "").split(",") if x})
        if len(grid) >= 2:
            best["lr_at_edge"] = math.isclose(best["lr"], grid[0], rel_tol=1e-6) or math.isclose(
                best["lr"], grid[-1], rel_tol=1e-6
            )
    _unselect_untuned_replicates(cells)
    seeds: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("status") == "ok":
            key = (
                r.get("encoder"),
                r["size"],
                r["subset"],
                round(float(r["lr"]), 12),
                bool(r.get("holdout")),
            )
            seeds[key].append(r)
    for group in seeds.values():
        losses = [_loss(r) for r in group if math.isfinite(_loss(r))]
        mean = sum(losses) / len(losses) if losses else math.nan
        std = (
            math.sqrt(sum((x - mean) ** 2 for x in losses) / (len(losses) - 1)) if len(losses) >= 2 else None
        )
        for r in group:
            r.update(n_seeds=len(losses), seed_mean_valid_loss=mean, seed_std_valid_loss=std)
    return rows
