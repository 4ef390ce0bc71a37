"""Run a scaling sweep: every missing cell of the spec, resumable, one row per run in one table.

Modelled on nanochat's `runs/scaling_laws.sh`: a run dir is complete when its `final.json`
exists, so a rerun skips finished runs and retries only missing or failed ones. A failing run
writes `error.json` (message + traceback) into its run dir and the sweep goes on. Runs execute in
this process, or in `parallel` worker processes (spawned, so several can share one GPU). The
parent alone writes `results.parquet` (upsert by run_id after each run), so the table is never
written by two processes at once. The fits (`scaling.laws`) read that table and nothing else.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from scalerec.io import read_json, write_json
from scalerec.scaling.spec import PlannedRun, SweepSpec, plan_runs

RESULTS = "results.parquet"
TrainFn = Callable[[Any], Any]


def run_dir(out_dir: Path, run: PlannedRun) -> Path:
    return Path(out_dir) / "runs" / run.run_id


def run_status(out_dir: Path, run: PlannedRun) -> str:
    """ "done" (final.json), "failed" (error.json) or "missing"."""
    d = run_dir(out_dir, run)
    if (d / "final.json").is_file():
        return "done"
    return "failed" if (d / "error.json").is_file() else "missing"


def _default_train(cfg: Any) -> Any:
    from scalerec.train import train

    return train(cfg, overwrite=True)  # a failed or killed cell is replaced once its re-run finishes


def _execute(train_fn: TrainFn | None, cfg: Any, threads: int | None) -> tuple[str, str | None]:
    """Train one run; any exception becomes `error.json` in its run dir (status "failed")."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    rdir = Path(cfg.run.out) / cfg.run.name
    (rdir / "error.json").unlink(missing_ok=True)
    try:
        (train_fn or _default_train)(cfg)
        if not (rdir / "final.json").is_file():
            raise RuntimeError("training returned without writing final.json (stopped early?)")
        return "done", None
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
        message = f"{type(exc).__name__}: {exc}"
        write_json(rdir / "error.json", {"error": message, "traceback": traceback.format_exc()})
        return "failed", message


def _flatten(prefix: str, metrics: dict[str, Any] | None) -> dict[str, Any]:
    return {f"{prefix}_{k}": float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}


def result_row(out_dir: Path, run: PlannedRun) -> dict[str, Any]:
    """The table row of one run, from its `final.json` (or `error.json`) and the sweep cell."""
    d = run_dir(out_dir, run)
    row: dict[str, Any] = {
        "run_id": run.run_id,
        "size": run.size,
        "subset": run.subset,
        "seed": run.seed,
        "lr": run.lr,
        "dataset": run.dataset_dir,
        "n_interactions": run.n_interactions,
        "n_users": run.n_users,
    }
    if (d / "final.json").is_file():
        f = read_json(d / "final.json")
        params = f.get("params", {})
        row.update(
            n_params=params.get("total"),
            n_params_non_embedding=params.get("non_embedding"),
            targets_seen=f.get("targets_seen"),
            flops=f.get("flops", {}).get("total"),
            flops_per_target=f.get("flops", {}).get("per_target"),
            steps=f.get("steps"),
            epochs=f.get("epochs"),
            wall_time_s=f.get("wall_time_s"),
            device=f.get("device"),
            status="ok",
            error=None,
        )
        row.update(_flatten("valid", f.get("valid")))
        row.update(_flatten("test", f.get("test")))
    else:
        err = read_json(d / "error.json") if (d / "error.json").is_file() else {"error": "not run"}
        row.update(status="failed", error=err.get("error"))
    return row


def read_results(out_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of `<out_dir>/results.parquet` as dicts ([] when absent)."""
    path = Path(out_dir) / RESULTS
    if not path.is_file():
        return []
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def upsert_results(out_dir: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Replace rows with the same run_id, append new ones; rewrite the table atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from scalerec.io import atomic_write

    new = {r["run_id"]: r for r in rows}
    table = [r for r in read_results(out_dir) if r["run_id"] not in new] + list(new.values())
    columns: list[str] = []
    for r in table:
        columns += [k for k in r if k not in columns]
    data = {c: [r.get(c) for r in table] for c in columns}
    path = Path(out_dir) / RESULTS
    with atomic_write(path, "wb") as fh:
        pq.write_table(pa.table(data), fh)
    return path


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]sweep[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )


def _summary_line(row: dict[str, Any]) -> str:
    head = f"{row['run_id']} {row['size']:>6} {row['subset']:>8} seed={row['seed']} lr={row['lr']:.2g}"
    if row.get("status") != "ok":
        return f"[red]failed[/] {head}: {row.get('error')}"
    loss = row.get("valid_loss", math.nan)
    ndcg = row.get("valid_ndcg@10", math.nan)
    return (
        f"[green]ok[/] {head} flops={row.get('flops') or 0:.3g} valid_loss={loss:.4f} "
        f"valid_ndcg@10={ndcg:.4f} {row.get('wall_time_s') or 0:.1f}s"
    )


def _run_pending(
    pending: list[PlannedRun], out_dir: Path, parallel: int, train_fn: TrainFn | None, on_done: Callable
) -> None:
    if parallel <= 1:
        for run in pending:
            on_done(run, *_execute(train_fn, run.cfg, None))
        return
    import multiprocessing
    import os

    threads = max(1, (os.cpu_count() or 1) // parallel)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=parallel, mp_context=ctx) as pool:
        futures: dict[Future, PlannedRun] = {}
        queue = list(pending)
        while queue or futures:
            while queue and len(futures) < parallel:
                run = queue.pop(0)
                futures[pool.submit(_execute, train_fn, run.cfg, threads)] = run
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                run = futures.pop(fut)
                try:
                    status, err = fut.result()
                except Exception as exc:  # noqa: BLE001 - a crashed worker fails one run only
                    status, err = "failed", f"worker crashed: {exc}"
                    write_json(run_dir(out_dir, run) / "error.json", {"error": err, "traceback": ""})
                on_done(run, status, err)


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    parallel: int = 1,
    dry_run: bool = False,
    train_fn: TrainFn | None = None,
    retry_failed: bool = True,
) -> list[dict[str, Any]]:
    """Run every missing run of `spec` under `out_dir/runs/<run_id>`; return one dict per run.

    Complete runs are skipped; failed ones are retried (unless `retry_failed` is False) and,
    if they fail again, recorded with their error. With `dry_run`, nothing is trained: the rows
    list each run with its estimated FLOPs and time (`scaling.estimate`). `train_fn` replaces
    `scalerec.train.train` (tests); with `parallel > 1` it must be picklable.
    """
    from scalerec.config import to_dict
    from scalerec.scaling.estimate import estimate_runs

    out_dir = Path(out_dir)
    runs = plan_runs(spec, out_dir)
    if dry_run:
        return estimate_runs(spec, runs, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "sweep.json", {"format_version": 1, "spec": to_dict(spec), "n_runs": len(runs)})
    wanted = {"missing", "failed"} if retry_failed else {"missing"}
    pending = [r for r in runs if run_status(out_dir, r) in wanted]
    finished = [r for r in runs if r not in pending]
    if finished:
        upsert_results(out_dir, [result_row(out_dir, r) for r in finished])
    rows = {r.run_id: result_row(out_dir, r) for r in finished}
    with _progress() as progress:
        task = progress.add_task(
            f"{len(finished)} already complete", total=len(runs), completed=len(finished)
        )
        start = time.monotonic()

        def on_done(run: PlannedRun, status: str, err: str | None) -> None:
            row = result_row(out_dir, run)
            rows[run.run_id] = row
            upsert_results(out_dir, [row])
            progress.console.print(_summary_line(row), highlight=False)
            n_fail = sum(r.get("status") != "ok" for r in rows.values())
            progress.update(task, advance=1, description=f"{n_fail} failed, {time.monotonic() - start:.0f}s")

        _run_pending(pending, out_dir, parallel, train_fn, on_done)
    return [rows[r.run_id] for r in runs]
