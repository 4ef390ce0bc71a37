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
import os
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from scalerec.config import to_dict
from scalerec.errors import UserError
from scalerec.io import atomic_write, read_json, write_json
from scalerec.memory import GPU_SHARE_ENV
from scalerec.scaling.branches import resumable, run_group
from scalerec.scaling.spec import CENTRE, PlannedRun, SweepSpec, plan_runs, search_winners
from scalerec.scaling.table import annotate, data_columns
from scalerec.scaling.world import world_from_spec, write_world
from scalerec.train.compile_cache import fresh_compile_cache

RESULTS = "results.parquet"
ADOPTED = "adopted.json"
"""A run dir holding only this file stands for a run taken from another sweep's table (`adopt_results`)."""
ANNOTATED = ("lr_selected", "lr_at_edge", "n_seeds", "seed_mean_valid_loss", "seed_std_valid_loss")
"""Columns `table.annotate` derives from the whole table: recomputed, never adopted."""
TrainFn = Callable[..., Any]
"""`train_fn(cfg, resume=False)`: trains one run (`scalerec.train.train` unless a test injects a fake)."""


def run_dir(out_dir: Path, run: PlannedRun) -> Path:
    return Path(out_dir) / "runs" / run.run_id


def run_status(out_dir: Path, run: PlannedRun) -> str:
    """ "done" (final.json, or adopted.json: see `adopt_results`), "failed" (error.json) or "missing"."""
    d = run_dir(out_dir, run)
    if (d / "final.json").is_file() or (d / ADOPTED).is_file():
        return "done"
    return "failed" if (d / "error.json").is_file() else "missing"


def _default_train(cfg: Any, resume: bool = False) -> Any:
    from scalerec.train import train

    # a cell killed after a checkpoint resumes; one with nothing to resume from (killed before its first
    # state.pt, or failed) is trained again, in place
    if not resume:
        clear_unresumable(Path(cfg.run.out) / cfg.run.name)
    return train(cfg, resume=resume, overwrite=not resume)


def clear_unresumable(rdir: Path) -> None:
    """Remove what a sweep run left without a result or state to resume (config.toml, metrics, error.json:
    a run killed before its first state.pt, or failed), and any staging copy beside it. The dir is named by
    its config's hash under the sweep's own runs dir, so it is this sweep's. Why: such a dir used to be
    trained again in a staging copy (`--overwrite`), and a staging copy cannot pause or be resumed: a wsd
    trunk's first pause then failed (its snapshot is copied from the run dir, FileNotFoundError: seen on
    the CPU, 2026-12-07), and a held-out run cut again restarted from scratch in every later call."""
    from scalerec.train.outputs import staging_dir

    if rdir.is_dir() and not (rdir / "final.json").exists() and not (rdir / "state.pt").exists():
        shutil.rmtree(rdir)
    shutil.rmtree(staging_dir(rdir), ignore_errors=True)


def _final(cfg: Any) -> bool:
    return (Path(cfg.run.out) / cfg.run.name / "final.json").is_file()


def _execute(
    train_fn: TrainFn | None, job: list[PlannedRun], threads: int | None
) -> list[tuple[str, str | None]]:
    """Train one job — a run, or a wsd trunk and its branches (`scaling.branches`); any exception
    becomes `error.json` in the dir of each run it left unfinished (status "failed")."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    for run in job:
        (Path(run.cfg.run.out) / run.cfg.run.name / "error.json").unlink(missing_ok=True)
    try:
        if len(job) == 1 and job[0].role == "single":
            cfg = job[0].cfg
            if resumable(Path(cfg.run.out) / cfg.run.name):
                (train_fn or _default_train)(cfg, resume=True)
            else:
                (train_fn or _default_train)(cfg)
        else:
            run_group(train_fn or _default_train, job[0], job[1:], lambda r: _final(r.cfg))
        if not all(_final(r.cfg) for r in job):
            raise RuntimeError("training returned without writing final.json (stopped early?)")
        return [("done", None)] * len(job)
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
        message = f"{type(exc).__name__}: {exc}"
        out: list[tuple[str, str | None]] = []
        for run in job:
            if _final(run.cfg):
                out.append(("done", None))
                continue
            rdir = Path(run.cfg.run.out) / run.cfg.run.name
            rdir.mkdir(parents=True, exist_ok=True)
            write_json(rdir / "error.json", {"error": message, "traceback": traceback.format_exc()})
            out.append(("failed", message))
        return out


def _flatten(prefix: str, metrics: dict[str, Any] | None) -> dict[str, Any]:
    return {f"{prefix}_{k}": float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}


def plan_columns(run: PlannedRun) -> dict[str, Any]:
    """The columns of a run's row that come from the sweep cell alone (no run files read)."""
    t = run.cfg.train
    return {
        "run_id": run.run_id,
        "size": run.size,
        "subset": run.subset if run.role == "single" and not t.decay_steps else f"{run.subset}@{t.max_steps}",
        "data_subset": run.subset,
        "seed": run.seed,
        "lr": run.lr,
        "lr_grid": ",".join(f"{v:.6g}" for v in run.lr_grid),
        "encoder": run.encoder or run.cfg.model.item_encoder,
        "holdout": run.holdout,
        "role": run.role,
        "trunk_id": run.trunk_id,
        "branch_step": run.branch_step,
        "schedule": t.schedule,
        "dataset": run.dataset_dir,
        "n_interactions": run.n_interactions,
        "n_users": run.n_users,
    }


def result_row(out_dir: Path, run: PlannedRun) -> dict[str, Any]:
    """The table row of one run, from its `final.json` (or `error.json`) and the sweep cell."""
    d = run_dir(out_dir, run)
    row = plan_columns(run)
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
        stopped = bool(f.get("stopped_early"))
        at_best = _counters_at(d, int(f.get("best_step") or 0)) if stopped else None
        if at_best is not None:  # the run's result is its best checkpoint: N, D, C and loss of that point
            row.update(at_best)
            f = {**f, **at_best}
        row.update(data_columns(run, f))
        row.update(_flatten("best_valid", f.get("valid")))
        end = f.get("valid") if at_best is not None else last_valid(d) or f.get("valid")
        row.update(_flatten("valid", end))
        row.update(_flatten("test", f.get("test")))
        row["stopped_early"] = stopped
    elif (d / ADOPTED).is_file():  # measured elsewhere: plan columns from today's spec, the rest as recorded
        adopted = read_json(d / ADOPTED)
        row.update({k: v for k, v in adopted["row"].items() if k not in row and k not in ANNOTATED})
        row["adopted_from"] = f"{adopted['source']}#{adopted['source_run_id']}"
    else:
        err = read_json(d / "error.json") if (d / "error.json").is_file() else {"error": "not run"}
        row.update(status="failed", error=err.get("error"))
    return row


def _counters_at(run_dir: Path, step: int) -> dict[str, Any] | None:
    """targets_seen / flops / steps at the validation of `step` (an early-stopped run's best checkpoint),
    from metrics.jsonl; None when that line is missing (then the end-of-run counters stand)."""
    import json

    path = run_dir / "metrics.jsonl"
    if step <= 0 or not path.is_file():
        return None
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("step") == step and "targets_seen" in rec and any(k.startswith("valid/") for k in rec):
            flops = rec.get("flops")
            return {"targets_seen": int(rec["targets_seen"]), "steps": step,
                    **({"flops": float(flops)} if flops is not None else {})}
    return None


def last_valid(run_dir: Path) -> dict[str, float] | None:
    """The run's last validation (end of training: the point its D and FLOPs describe), from
    metrics.jsonl; `final.json`'s "valid" is the best one (by `eval.monitor`), which can be earlier."""
    import json

    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    last = None
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a cut last line of an interrupted run
        if any(k.startswith("valid/") for k in rec):
            last = {k[len("valid/") :]: v for k, v in rec.items() if k.startswith("valid/")}
    return last


def read_results(out_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of `<out_dir>/results.parquet` as dicts ([] when absent)."""
    path = Path(out_dir) / RESULTS
    return _read_table(path) if path.is_file() else []


def upsert_results(out_dir: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Replace rows with the same run_id, append new ones; rewrite the table atomically."""
    new = {r["run_id"]: r for r in rows}
    table = [r for r in read_results(out_dir) if r["run_id"] not in new] + list(new.values())
    return _write_results(out_dir, table)


def _write_results(out_dir: str | Path, table: list[dict[str, Any]]) -> Path:
    """Write the whole results table atomically (a reader sees the old table or the new one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

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


def jobs_of(runs: list[PlannedRun]) -> list[list[PlannedRun]]:
    """Runs grouped into jobs: a single run, or a wsd trunk followed by its branches."""
    jobs: list[list[PlannedRun]] = []
    for run in runs:
        if run.role == "branch" and jobs and jobs[-1][0].run_id == run.trunk_id:
            jobs[-1].append(run)
        else:
            jobs.append([run])
    return jobs


GPU_HEADROOM = 1.6
"""GPU bytes a run takes per byte of `memory.training_bytes`' lower bound (activations, allocator slack,
the CUDA context). Measured on an H200: an xs run at batch 4,096 on a 20,000-item world held 47.8 GiB
for a bound of 30.6 GiB (world_v6 probe, docs/results/world_v6_probe)."""
MEMORY_ERRORS = ("out of memory", "needs at least")
"""A failed run's message with one of these ran out of GPU memory (the allocator, or `memory.require`)."""


def job_gpu_bytes(job: list[PlannedRun]) -> int:
    """Planned GPU memory of one job (its runs share one process, one at a time): the trainer's own
    lower bound times `GPU_HEADROOM`."""
    from scalerec.memory import training_bytes
    from scalerec.scaling.estimate import dataset_n_items

    cfg = job[0].cfg
    t = cfg.train
    micro = max(1, t.batch_size // t.grad_accum)
    parts = training_bytes(
        cfg.model, micro, t.targets, t.loss, t.negatives, t.shared_negatives, dataset_n_items(job[0])
    )
    return int(sum(parts.values()) * GPU_HEADROOM)


def gpu_budget(runs: list[PlannedRun], parallel: int) -> int | None:
    """Bytes free on the GPU the sweep's workers will share (None: not a GPU sweep, or one worker)."""
    if parallel <= 1 or not any(r.cfg.run.device in ("cuda", "auto") for r in runs):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.mem_get_info()[0])


class _Admission:
    """Which queued job starts next when workers share one GPU: the first that fits beside the running
    ones (a job alone always starts: the trainer's own check then refuses it with a clear error). A job
    that ran out of memory beside others gets one more try alone, so a sweep whose `--parallel` is too
    high for its largest runs still finishes them (serially) instead of failing them."""

    def __init__(self, budget: int | None, need: Callable[[list[PlannedRun]], int]) -> None:
        self.budget, self._need_of = budget, need
        self.needs: dict[int, int] = {}  # planned bytes per job, computed once (it reads the dataset card)
        self.running: dict[int, int] = {}
        self.crowded: set[int] = set()  # running jobs that have had another job beside them
        self.alone: set[int] = set()
        self.retried: set[int] = set()

    def need(self, job: list[PlannedRun]) -> int:
        if id(job) not in self.needs:
            self.needs[id(job)] = self._need_of(job) if self.budget is not None else 0
        return self.needs[id(job)]

    def pick(self, queue: list[list[PlannedRun]]) -> int | None:
        retry = next((i for i, j in enumerate(queue) if id(j) in self.alone), None)
        if retry is not None:  # the GPU drains, then the retry runs by itself
            return None if self.running else retry
        if self.alone & set(self.running):
            return None
        for i, job in enumerate(queue):
            if not self.running or self.budget is None:
                return i
            if sum(self.running.values()) + self.need(job) <= self.budget:
                return i
        return None

    def start(self, job: list[PlannedRun]) -> None:
        self.running[id(job)] = self.need(job)
        self.crowded.discard(id(job))
        if len(self.running) > 1:
            self.crowded |= set(self.running)

    def finish(self, job: list[PlannedRun], results: list[tuple[str, str | None]]) -> bool:
        """Record a finished job; True when it should run again alone (out of memory beside others)."""
        self.running.pop(id(job), None)
        crowded = id(job) in self.crowded
        self.crowded.discard(id(job))
        oom = any(s == "failed" and err and any(m in err for m in MEMORY_ERRORS) for s, err in results)
        if oom and crowded and id(job) not in self.retried:
            self.retried.add(id(job))
            self.alone.add(id(job))
            return True
        self.alone.discard(id(job))
        return False


def _run_pending(
    pending: list[list[PlannedRun]],
    parallel: int,
    train_fn: TrainFn | None,
    on_done: Callable,
    budget: int | None = None,
    need: Callable[[list[PlannedRun]], int] = job_gpu_bytes,
) -> None:
    """Train `pending` jobs, `parallel` at a time. With a GPU `budget` (bytes), a job starts only when
    its planned memory (`need`) fits beside the running ones (`_Admission`)."""
    if parallel <= 1:
        for job in pending:
            for run, (status, err) in zip(job, _execute(train_fn, job, None), strict=True):
                on_done(run, status, err)
        return
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // parallel)
    ctx = multiprocessing.get_context("spawn")
    admit = _Admission(budget, need)
    with ProcessPoolExecutor(
        max_workers=parallel, mp_context=ctx, initializer=_worker_init, initargs=(parallel, os.getpid())
    ) as pool:
        futures: dict[Future, list[PlannedRun]] = {}
        queue = list(pending)
        while queue or futures:
            while queue and len(futures) < parallel and (i := admit.pick(queue)) is not None:
                job = queue.pop(i)
                admit.start(job)
                futures[pool.submit(_execute, train_fn, job, threads)] = job
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                job = futures.pop(fut)
                try:
                    results = fut.result()
                except Exception as exc:  # noqa: BLE001 - a crashed worker fails its job only
                    results = [("failed", f"worker crashed: {exc}")] * len(job)
                    for run in job:
                        rdir = Path(run.cfg.run.out) / run.cfg.run.name
                        rdir.mkdir(parents=True, exist_ok=True)
                        write_json(rdir / "error.json", {"error": results[0][1], "traceback": ""})
                if admit.finish(job, results):
                    queue.insert(0, job)
                    continue
                for run, (status, err) in zip(job, results, strict=True):
                    on_done(run, status, err)


ORPHAN_POLL_S = 1.0
"""How often a worker checks that the sweep that started it is still alive."""
ORPHAN_GRACE_S = 20.0
"""How long an orphaned worker's run gets to stop on its own (the trainer's `finally` clauses) before the
worker exits anyway: an interrupted job leaves the worker idle, waiting for work from a sweep that is gone,
and on a GPU it would still hold its CUDA context and cached memory."""


def _worker_init(parallel: int, sweep_pid: int) -> None:
    """Worker start-up. The workers share one GPU, so each sizes its ranking tiles from its share of the
    free memory (set in the worker only; the sweep's own process keeps its environment). And a worker ends
    when its sweep does: `timeout` kills the sweep, not its spawned workers, which then trained on as
    orphans, holding their runs' locks and a share of the GPU (seen on the CPU, 2026-12-07: both workers
    still training a minute after `timeout` ended their sweep; the device tool kills what a command leaves
    running when it returns, so there they only outlived the sweep to the call's end, but a workstation or a
    scheduler that signals only the main process keeps them). The orphan sends itself SIGTERM, which the
    trainer turns into an interrupt: the run stops, its last state.pt is what the next sweep resumes from,
    and the worker exits (`ORPHAN_GRACE_S`)."""
    os.environ[GPU_SHARE_ENV] = str(parallel)
    if os.getppid() != sweep_pid:  # started through some intermediate: no parent to watch, so no watcher
        return

    def watch() -> None:
        while os.getppid() == sweep_pid:
            time.sleep(ORPHAN_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE_S)
        os._exit(143)  # 128 + SIGTERM, as if the signal had ended it

    threading.Thread(target=watch, name="sweep-orphan-watch", daemon=True).start()


ONLY_KEYS = ("size", "subset", "seed", "encoder", "holdout")


def parse_only(items: list[str]) -> dict[str, set[str]]:
    """`["size=m2", "seed=0,1"]` -> `{"size": {"m2"}, "seed": {"0", "1"}}`; an unknown key is refused."""
    only: dict[str, set[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or key not in ONLY_KEYS or not values.strip():
            raise UserError(f"--only {item!r}: expected KEY=V1,V2 with KEY one of {', '.join(ONLY_KEYS)}")
        only.setdefault(key, set()).update(v.strip().lower() for v in values.split(",") if v.strip())
    return only


def selected(job: list[PlannedRun], only: dict[str, set[str]] | None) -> bool:
    """Whether `--only` keeps this job: some run of it matches every key. Why whole jobs: a branch cannot
    train without its trunk, so selecting a branch's size or subset runs its trunk too."""
    if not only:
        return True
    return any(all(str(getattr(r, k)).lower() in vs for k, vs in only.items()) for r in job)


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    parallel: int = 1,
    dry_run: bool = False,
    train_fn: TrainFn | None = None,
    retry_failed: bool = True,
    calibrate: bool = True,
    adopt: str | Path | None = None,
    only: dict[str, set[str]] | None = None,
) -> list[dict[str, Any]]:
    """Run every missing run of `spec` under `out_dir/runs/<run_id>`; return one dict per run.

    Complete runs are skipped; failed ones are retried (unless `retry_failed` is False) and,
    if they fail again, recorded with their error. With `dry_run`, nothing is trained: the rows
    list each run with its estimated FLOPs and time (`scaling.estimate`, from a short calibration
    run per size on this device unless `calibrate` is False). A spec with a `[world]` table first
    writes its known-floor world (`scaling.world`). `adopt`: another sweep's results table (or its dir)
    whose finished runs count as done here (`adopt_results`). `only` (`parse_only`) trains just the jobs
    it selects and leaves the others missing, e.g. a held-out run longer than any shared call, alone on a
    machine (its rows are the only ones this call adds; a dry run lists only them).
    `train_fn(cfg, resume=False)` replaces `scalerec.train.train` (tests); with `parallel > 1` it must be
    picklable.
    """
    from scalerec.scaling.estimate import estimate_runs

    out_dir = Path(out_dir)
    prepare_world(spec, out_dir)
    if dry_run:
        # the searches already finished (here or in the adopted table) place their extra seeds at the
        # winner, as the real sweep will; only cells still searching fall back to the centre estimate
        known = search_winners(spec, _finished_rows(out_dir, adopt)) if spec.extra_seeds_at_winner else {}
        runs = plan_runs(spec, out_dir, known, unknown=CENTRE)
        runs = [r for j in jobs_of(runs) if selected(j, only) for r in j]
        plan = estimate_runs(spec, runs, out_dir, calibrate=calibrate)
        adoptable = set(adopt_results(out_dir, runs, adopt, write=False)) if adopt is not None else set()
        for r in plan:
            if r["run_id"] in adoptable:
                r.update(status="adopted", est_new_flops=0.0, est_time_s=0.0)
        return plan
    runs = plan_runs(spec, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with fresh_compile_cache(out_dir):
        rows = _run_phase(spec, runs, out_dir, parallel, train_fn, retry_failed, adopt, only=only)
        if spec.extra_seeds_at_winner:  # phase 2: the extra seeds, at the LR the finished search chose
            winners = search_winners(spec, list(rows.values()))
            runs = plan_runs(spec, out_dir, winners)
            n_cells = len({(r.encoder, r.size, r.subset) for r in runs if not r.holdout})
            if len(winners) < n_cells:
                print(
                    f"sweep: {n_cells - len(winners)} of {n_cells} cells have no finished LR search: "
                    "their extra seeds wait for it",
                    flush=True,
                )
            rows = _run_phase(
                spec, runs, out_dir, parallel, train_fn, retry_failed, adopt, settled=rows, only=only
            )
    return [rows[r.run_id] for r in runs if r.run_id in rows]


def _run_phase(
    spec: SweepSpec,
    runs: list[PlannedRun],
    out_dir: Path,
    parallel: int,
    train_fn: TrainFn | None,
    retry_failed: bool,
    adopt: str | Path | None,
    settled: dict[str, dict[str, Any]] | None = None,
    only: dict[str, set[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Train the missing runs of `runs`, upserting results.parquet after each; the rows of all of them.
    `settled`: rows an earlier phase of this call already has (trained, failed or found done): they are
    neither re-read nor tried again, so a run that failed in phase 1 is not retried a second time.
    `only`: jobs it does not select are left as they are, and their unfinished runs get no row."""
    settled = settled or {}
    adopt_legacy_dirs(out_dir, runs)
    if adopt is not None:
        adopt_results(out_dir, runs, adopt)
    write_json(out_dir / "sweep.json", {"format_version": 1, "spec": to_dict(spec), "n_runs": len(runs)})
    wanted = {"missing", "failed"} if retry_failed else {"missing"}
    pending = [
        j
        for j in jobs_of(runs)
        if not all(r.run_id in settled for r in j) and any(run_status(out_dir, r) in wanted for r in j)
    ]
    left = {r.run_id for j in pending if not selected(j, only) for r in j if run_status(out_dir, r) != "done"}
    pending = [j for j in pending if selected(j, only)]
    todo = {r.run_id for j in pending for r in j if run_status(out_dir, r) != "done"}
    finished = [r for r in runs if r.run_id not in todo and r.run_id not in left]
    rows = {r.run_id: settled.get(r.run_id) or result_row(out_dir, r) for r in finished}
    if finished:
        upsert_results(out_dir, annotate(list(rows.values())))
    if not pending:
        return rows
    eta = _Eta(spec, runs, out_dir, todo)
    with _progress() as progress:
        task = progress.add_task(eta.describe(0), total=len(runs), completed=len(finished))

        def on_done(run: PlannedRun, status: str, err: str | None) -> None:
            if run.run_id not in todo:  # a job's run that was done before (a trunk whose branch was missing)
                return
            rows[run.run_id] = result_row(out_dir, run)
            upsert_results(out_dir, annotate(list(rows.values())))
            progress.console.print(_summary_line(rows[run.run_id]), highlight=False)
            n_fail = sum(r.get("status") != "ok" for r in rows.values())
            eta.done(run.run_id)
            progress.update(task, advance=1, description=eta.describe(n_fail))

        budget = gpu_budget(runs, parallel) if train_fn is None else None
        _run_pending(pending, parallel, train_fn, on_done, budget)
    return rows


def adopt_legacy_dirs(out_dir: Path, runs: list[PlannedRun]) -> dict[str, str]:
    """Rename run dirs named by the old, location-dependent id to today's id (`spec.sweep_run_id`), and
    drop their rows from results.parquet (the sweep writes them again under the new id). The old id is
    recomputed from the dataset / token paths this sweep dir's sweep.json recorded (the paths the runs
    were planned with, wherever the dir lay then) and from today's paths. Returns {old id: new id}."""
    from scalerec.scaling.spec import legacy_run_id

    runs_dir = out_dir / "runs"
    if not runs_dir.is_dir():
        return {}
    recorded = read_json(out_dir / "sweep.json").get("spec", {}) if (out_dir / "sweep.json").is_file() else {}
    path_sets = [(None, None), (recorded.get("dataset") or None, recorded.get("tokens") or None)]
    moved: dict[str, str] = {}
    for run in runs:
        new_dir = run_dir(out_dir, run)
        if new_dir.exists():
            continue
        for dataset, tokens in path_sets:
            old = legacy_run_id(run.cfg, dataset, tokens)
            if old != run.run_id and (runs_dir / old).is_dir():
                (runs_dir / old).rename(new_dir)
                moved[old] = run.run_id
                break
    if moved:
        if (out_dir / RESULTS).is_file():
            _write_results(out_dir, [r for r in read_results(out_dir) if r["run_id"] not in moved])
        print(f"sweep: {len(moved)} run dirs renamed to location-independent ids", flush=True)
    return moved


def prepare_world(spec: SweepSpec, out_dir: Path) -> None:
    """A `[world]` spec: write the world dataset (once; kept when identical) and point the spec at it."""
    if not spec.world:
        return

    cfg, eval_users = world_from_spec(spec.world)
    spec.dataset = spec.dataset or str((Path(out_dir) / "world").resolve())
    write_world(cfg, spec.dataset, eval_users)
    spec.tokens = spec.tokens or str(Path(spec.dataset) / "tokens")


class _Eta:
    """Remaining time: the dry-run estimate of each run still to do, rescaled by how long the
    finished ones really took against their own estimates (so a busy machine corrects itself)."""

    def __init__(self, spec: SweepSpec, runs: list[PlannedRun], out_dir: Path, todo: set[str]) -> None:
        from scalerec.scaling.estimate import estimate_runs

        todo_runs = [r for r in runs if r.run_id in todo]
        est = estimate_runs(spec, todo_runs, out_dir, calibrate=False) if todo_runs else []
        self.est = {r["run_id"]: r["est_time_s"] for r in est}
        self.left = dict(self.est)
        self.start, self.spent_est = time.monotonic(), 0.0

    def done(self, run_id: str) -> None:
        self.spent_est += self.left.pop(run_id, 0.0)

    def describe(self, n_fail: int) -> str:
        elapsed = time.monotonic() - self.start
        ratio = elapsed / self.spent_est if self.spent_est > 0 else 1.0
        remaining = sum(self.left.values()) * ratio
        return f"{n_fail} failed, ETA {_fmt_s(remaining)}"


def _fmt_s(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


IDENTITY = ("size", "data_subset", "seed", "encoder", "holdout", "role", "branch_step")
"""Plan columns an adopted row must share with the planned run, beside its config hash (`run_id`)."""


def adopt_results(out_dir: Path, runs: list[PlannedRun], source: str | Path, write: bool = True) -> list[str]:
    """Count the finished runs of another sweep's results table as done here, without their run dirs.

    Why: a committed result (docs/results/<sweep>/results.parquet) outlives the machine that trained it,
    and a spec that grows (a new LR point, a new size) should train only what is new. A planned run is
    adopted when a row with status ok has its config hash (`run_id`: today's id, the location-dependent
    one, or the one with the row's dataset path and the token path at the same place beside it) and the
    same plan columns (`IDENTITY`), so nothing trained under another config is taken. A wsd trunk and its
    branches are adopted together or not at all (a missing branch would need the trunk's checkpoint). Each
    adopted run gets `runs/<id>/adopted.json` (the source row; not with `write=False`, the dry run's
    preview); its table row says `adopted_from`. Returns the adopted run ids.
    """
    from scalerec.scaling.spec import legacy_run_id

    table = _results_table(source)
    if not table.is_file():
        raise FileNotFoundError(f"adopt: no results table at {table}")
    rows = _read_table(table)
    by_id = {r["run_id"]: r for r in rows if r.get("status") == "ok"}
    datasets = sorted({str(r["dataset"]) for r in by_id.values() if r.get("dataset")})

    def match(run: PlannedRun) -> dict[str, Any] | None:
        ids = [run.run_id, legacy_run_id(run.cfg)]
        for ds in datasets:
            ids.append(legacy_run_id(run.cfg, ds, _beside(run.cfg.data.tokens, run.cfg.data.dataset, ds)))
        plan = {k: v for k, v in plan_columns(run).items() if k in IDENTITY}
        for i in dict.fromkeys(ids):
            row = by_id.get(i)
            if row is not None and all(_same(row.get(k), v) for k, v in plan.items()):
                return row
        return None

    taken: list[str] = []
    for job in jobs_of(runs):
        if any(run_status(out_dir, r) != "missing" for r in job):
            continue  # done, failed or partly run here: this dir's own runs come first
        found = [match(r) for r in job]
        if any(f is None for f in found):
            continue
        for run, row in zip(job, found, strict=True):
            assert row is not None
            taken.append(run.run_id)
            if write:
                d = run_dir(out_dir, run)
                d.mkdir(parents=True, exist_ok=True)
                write_json(d / ADOPTED, {"source": str(table), "source_run_id": row["run_id"], "row": row})
    if taken and write:
        print(f"sweep: {len(taken)} runs adopted from {table}", flush=True)
    return taken


def _finished_rows(out_dir: Path, adopt: str | Path | None) -> list[dict[str, Any]]:
    """This sweep dir's results rows and those of the table it adopts (what a dry run can know)."""
    tables = [out_dir / RESULTS] + ([_results_table(adopt)] if adopt is not None else [])
    return [r for t in tables if t.is_file() for r in _read_table(t)]


def _results_table(source: str | Path) -> Path:
    """A results table given as the .parquet itself or as the sweep dir holding it."""
    src = Path(source)
    return src if src.suffix == ".parquet" else src / RESULTS


def _read_table(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _beside(tokens: str | None, dataset: str, new_dataset: str) -> str | None:
    """`tokens` moved along with its dataset: same place relative to the dataset's parent dir."""
    if not tokens:
        return tokens
    try:
        rel = Path(tokens).relative_to(Path(dataset).parent)
    except ValueError:
        return tokens
    return str(Path(new_dataset).parent / rel)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b
