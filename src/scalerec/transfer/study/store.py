"""Where finished cells live, and the choices made from them on validation only.

Each finished cell is one file, `<work>/cells/<name>.json` (its row), plus `<name>.npz` (per-user test
ranks, the cold and rare masks, most-popular's ranks) for paired comparisons. A cell is done exactly
when its row exists and is current (`stale`), so a rerun skips it and an interrupted cell (no row yet)
is redone. One file per cell also lets several processes run cells side by side without sharing a file;
`results.jsonl` is rebuilt from the rows after every call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.io import atomic_write
from scalerec.train import numerics
from scalerec.transfer.strategies import reads_pretrained_weights
from scalerec.transfer.study.cells import Cell, pretrained_group


class Store:
    """The finished cells under `<work>/cells`."""

    def __init__(self, work: str | Path) -> None:
        self.dir = Path(work) / "cells"

    def row_path(self, cell: Cell | str) -> Path:
        return self.dir / f"{cell if isinstance(cell, str) else cell.name}.json"

    def done(self, cell: Cell) -> bool:
        return self.row_path(cell).is_file()

    def write(self, cell: Cell, row: dict[str, Any], ranks: dict[str, np.ndarray] | None = None) -> None:
        """Save a finished cell: ranks first, the row last (the row is what marks it done)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if ranks is not None:
            small = {k: v.astype(np.int32) if v.dtype == np.int64 else v for k, v in ranks.items()}
            with atomic_write(self.dir / f"{cell.name}.npz", mode="wb", encoding=None) as fh:
                np.savez_compressed(fh, **small)  # type: ignore[arg-type]  # ranks < 2**31: int32 halves it
        with atomic_write(self.row_path(cell)) as fh:
            fh.write(numerics.dumps({"cell": cell.name, "group": cell.group, **row}, indent=1) + "\n")

    def rows(self) -> list[dict[str, Any]]:
        if not self.dir.is_dir():
            return []
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.dir.glob("*.json"))]

    def ranks(self, name: str) -> dict[str, np.ndarray]:
        path = self.dir / f"{name}.npz"
        if not path.is_file():
            return {}
        with np.load(path) as npz:
            return {k: npz[k] for k in npz.files}

    def write_jsonl(self, path: Path) -> Path:
        """Every finished row, one JSON object per line (sorted by cell name)."""
        with atomic_write(path) as fh:
            for row in self.rows():
                fh.write(numerics.dumps(row) + "\n")
        return path


def _valid(row: dict[str, Any]) -> float:
    v = row.get("valid_ndcg@10")
    return float("-inf") if v is None else float(v)


def choose_lr(rows: list[dict[str, Any]], group: str) -> dict[str, Any] | None:
    """The LR of `group` with the best validation NDCG@10, once every LR of its grid has a row.

    Returns `{"lr", "edge", "search": [{"lr", "valid_ndcg@10", "cut"}...]}` (`edge`: the winner is the
    smallest or largest LR of a grid of 3 or more, so the optimum may lie outside it; `cut`: that point
    was stopped by the time cap, not by early stopping, so the points need not have had equal compute),
    or None while the search is incomplete. Test metrics are never read here.
    """
    mine = [r for r in rows if r.get("group") == group]
    if not mine:
        return None
    # the union of the grids the rows were written under: a grid that grew between calls (its new
    # points' rows carry it) leaves the search incomplete until every point has run
    grid = sorted({float(x) for r in mine for x in r.get("lr_grid", [r["lr"]])})
    have = {float(r["lr"]): r for r in mine}
    if any(lr not in have for lr in grid):
        return None
    best = max(grid, key=lambda lr: (_valid(have[lr]), -lr))  # ties: the smaller LR
    search = []
    for lr in grid:
        r = have[lr]
        cut = bool(r.get("stopped_by_time"))
        search.append({"lr": lr, "valid_ndcg@10": r.get("valid_ndcg@10"), "cut": cut})
    edge = len(grid) >= 3 and best in (grid[0], grid[-1])
    winner = have[best]
    choice = {"lr": best, "edge": edge, "search": search, "cell": winner["cell"]}
    if winner.get("kind") == "pretrain":  # what fine-tuning rows built on it must match (`stale`)
        choice["version"] = checkpoint_version(winner)
        choice["first_version"] = winner.get("first_version", choice["version"])
    return choice


def choices(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every complete LR search among `rows`: group → `choose_lr`'s answer. Pretraining searches come
    first; fine-tuning searches then count only rows built on the chosen checkpoints (`stale`)."""
    pretraining = _searches([r for r in rows if r.get("kind") == "pretrain"])
    rest = [r for r in rows if r.get("kind") != "pretrain" and not stale(r, pretraining)]
    return {**pretraining, **_searches(rest)}


def _searches(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for group in sorted({r["group"] for r in rows if "lr_grid" in r}):
        chosen = choose_lr(rows, group)
        if chosen is not None:
            out[group] = chosen
    return out


def checkpoint_version(row: dict[str, Any]) -> Any:
    """Which weights a pretraining row's run holds: the step of its best validation, which an extended run
    (`StudySpec.continue_cut`) moves only when it finds better weights."""
    return row.get("best_step")


def stale(row: dict[str, Any] | None, chosen: dict[str, dict[str, Any]]) -> bool:
    """Whether a fine-tuning row was built on a pretrained checkpoint that is no longer the chosen one
    (a pretraining grid that grew moved the choice, or an extended pretraining run found better weights):
    it must run again, and the report must not show it. A search whose stored rows are incomplete has no
    choice, so its rows are held back too. Rows written before versions were recorded were built on the
    checkpoint's first version. Scratch rows never are: they use the checkpoint's architecture and token
    table, the same for every checkpoint of a size, and none of its weights."""
    if row is None or row.get("kind") != "finetune" or not row.get("pretrained"):
        return False
    if not reads_pretrained_weights(row["method"]):
        return False
    choice = chosen.get(pretrained_group(row["target"], row["size"]))
    if choice is None or choice["cell"] != row["pretrained"]:
        return True
    built_on = row.get("pretrained_version", choice.get("first_version"))
    return built_on != choice.get("version")


def run_continues(run_dir: str | Path) -> bool:
    """Whether a training run dir that the time box cut holds the state.pt to extend it from."""
    return (Path(run_dir) / "state.pt").is_file()


def continues(row: dict[str, Any] | None) -> bool:
    """Whether a row was cut by the time box and this machine holds the state its run left (a fine-tuning
    cell's `transfer.finetune.resume_path`, a training cell's state.pt): running the cell again continues
    that run instead of repeating it."""
    if row is None or not row.get("stopped_by_time") or not row.get("run_dir"):
        return False
    if row.get("kind") == "finetune":
        from scalerec.transfer.finetune import resume_path

        return resume_path(row["run_dir"]).is_file()
    return row.get("kind") in ("pretrain", "baseline") and run_continues(row["run_dir"])


def needs_run(row: dict[str, Any] | None, chosen: dict[str, dict[str, Any]], continue_cut: bool) -> bool:
    """Whether a cell whose stored row is `row` (None: never run) must run (again): it has no row, its row
    is `stale`, or (with `continue_cut`) it `continues` a run the time box stopped."""
    return row is None or stale(row, chosen) or (continue_cut and continues(row))

