"""The resumable loop over cells: run every cell that is ready and not finished, in phase order,
until nothing is left or the time budget says stop starting new ones.

A cell is ready when what it needs was chosen on validation: a fine-tuning cell needs the winner of
its pretraining LR search (and, in phase 3, its LR from the phase-2 search). Choices are re-read
from the stored rows whenever a cell ends, so a rerun continues exactly where the last call stopped.
With `jobs > 1`, ready cells run side by side in child processes (`python -m
scalerec.transfer.study CELL_JSON`), small models sharing one GPU; each child writes only its own row.
A failing cell is reported and skipped for the rest of the call; the others go on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from scalerec.io import atomic_write
from scalerec.memory import GPU_SHARE_ENV
from scalerec.transfer.study.cells import Cell, StudySpec, all_cells, pretrained_group
from scalerec.transfer.study.execute import Context, run_cell
from scalerec.transfer.study.store import Store, choices, needs_run

STATE = "study.json"
"""`<work>/study.json`: the spec, layout, device and root a child process rebuilds its Context from."""


def save_context(ctx: Context) -> None:
    from scalerec.config import to_dict

    state = {"spec": to_dict(ctx.spec), "layout": ctx.layout, "device": ctx.device, "root": str(ctx.root)}
    with atomic_write(ctx.work / STATE) as fh:
        fh.write(json.dumps(state, indent=1) + "\n")


def load_context(work: Path) -> Context:
    from scalerec.config import from_dict

    state = json.loads((work / STATE).read_text())
    return Context(
        from_dict(StudySpec, state["spec"]), work, state["layout"], state["device"], Path(state["root"])
    )


def ready(cell: Cell, ctx: Context) -> bool:
    """Whether every choice `cell` depends on has been made (see the module docstring): for fine-tuning,
    a pretraining search that covers the spec's whole grid for that size (a grid that grew is not done
    until its new points have run, whatever the old points chose)."""
    if cell.kind != "finetune":
        return True
    group = pretrained_group(cell.target, cell.size)
    choice = ctx.chosen.get(group)
    if choice is None or group in ctx.pretraining:  # a cut pretraining run still going on may win
        return False
    if not set(ctx.spec.pretrain_grid(cell.size)) <= {float(p["lr"]) for p in choice["search"]}:
        return False
    if choice["cell"] in ctx.missing:
        return False
    return cell.phase == 2 or cell.lr is not None


def holds_checkpoint(work: Path, row: dict[str, Any]) -> bool:
    """Whether this machine has the weights of a finished pretraining cell (its row). A call given only
    some sizes' checkpoints (they travel as packed parts, and all of them exceed what one call may carry)
    then runs those sizes' fine-tuning and leaves the rest for later, instead of failing every cell that
    lacks one. Rows without a run dir (no checkpoint written, as in tests) count as held."""
    return not row.get("run_dir") or (work / "runs" / row["cell"] / "model.safetensors").is_file()


def pending(ctx: Context, store: Store) -> tuple[list[Cell], list[Cell]]:
    """(ready unfinished cells in run order, all unfinished cells), after refreshing the choices. A cell
    whose row is stale (built on a pretrained checkpoint that is no longer chosen), or was cut by the time
    box while this machine holds its state, is unfinished (`store.needs_run`)."""
    rows = store.rows()
    ctx.chosen = choices(rows)
    by_name = {r["cell"]: r for r in rows}
    ctx.missing = {
        c["cell"] for g, c in ctx.chosen.items()
        if g.startswith("pre-") and not holds_checkpoint(ctx.work, by_name[c["cell"]])
    }
    lrs = {g: c["lr"] for g, c in ctx.chosen.items()}
    cut = ctx.spec.continue_cut
    todo = [c for c in all_cells(ctx.spec, lrs) if needs_run(by_name.get(c.name), ctx.chosen, cut)]
    ctx.pretraining = {pretrained_group(c.target, c.size) for c in todo if c.kind == "pretrain"}
    return [c for c in todo if ready(c, ctx)], todo


def _child(ctx: Context, cell: Cell, jobs: int) -> int:
    """One cell in its own process. Its full-ranking tiles are sized for a 1/`jobs` share of the free GPU
    memory (`$SCALEREC_GPU_SHARE`, as `sweep --parallel` sets it): each child otherwise sizes them for the
    whole card, and a dozen caching allocators then run it out of memory."""
    arg = json.dumps(dataclasses.asdict(cell))
    env = {**os.environ, GPU_SHARE_ENV: str(jobs)}
    return subprocess.call([sys.executable, "-m", "scalerec.transfer.study", str(ctx.work), arg], env=env)


def _in_process(ctx: Context, store: Store, cell: Cell) -> int:
    try:
        run_cell(cell, ctx, store)
        return 0
    except Exception:  # one failed cell must not stop the others
        log_error(ctx.work, cell, traceback.format_exc())
        return 1


def log_error(work: Path, cell: Cell, text: str) -> None:
    errors = work / "errors"
    errors.mkdir(parents=True, exist_ok=True)
    (errors / f"{cell.name}.txt").write_text(text, encoding="utf-8")
    print(
        json.dumps({"event": "error", "cell": cell.name, "error": text.strip().splitlines()[-1]}), flush=True
    )


def run_study(
    ctx: Context,
    time_budget_min: float | None = None,
    jobs: int = 1,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ready cells until none is left; returns counts (`done`, `failed`, `left`, `stopped_by_budget`).

    With `jobs > 1` a slot is refilled as soon as its cell ends (not round by round: a round waited for
    its slowest cell, so a 15-minute pretraining beside a 5-second most-popular cell left a core idle),
    and the ready set is re-read then, so a search that just completed releases its dependants at once.
    """
    store, start, failed = Store(ctx.work), time.perf_counter(), set()
    save_context(ctx)
    stopped = False

    def over_budget() -> bool:
        return time_budget_min is not None and time.perf_counter() - start > 60 * time_budget_min

    def finish(cell: Cell, code: int) -> None:
        if code or not store.done(cell):
            failed.add(cell.name)
        elif on_row is not None:
            on_row(json.loads(store.row_path(cell).read_text()))

    if jobs <= 1:
        while True:
            todo = [c for c in pending(ctx, store)[0] if c.name not in failed]
            if not todo:
                break
            if over_budget():
                stopped = True
                break
            finish(todo[0], _in_process(ctx, store, todo[0]))
    else:
        running: dict[Future[int], Cell] = {}
        with ThreadPoolExecutor(jobs) as pool:
            while True:
                busy = failed | {c.name for c in running.values()}
                todo = [c for c in pending(ctx, store)[0] if c.name not in busy]
                if todo and over_budget():
                    stopped = True
                while todo and len(running) < jobs and not stopped:
                    cell = todo.pop(0)
                    running[pool.submit(_child, ctx, cell, jobs)] = cell
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    finish(running.pop(fut), fut.result())
    _, left = pending(ctx, store)
    return {
        "done": len(store.rows()),
        "failed": sorted(failed),
        "left": len(left),
        "stopped_by_budget": stopped,
        "checkpoints_missing": sorted(ctx.missing),
    }
