"""Who may write a run dir, and how a re-run replaces one without destroying it first (issue 22).

Four rules, kept here so the trainer only asks "give me the dir to write":

- A fresh `train` into a dir that already holds a run refuses, naming `--resume` and `--overwrite`.
- `--overwrite` trains into a staging sibling (`<out>/.<name>.overwrite`) and swaps it in only when
  the new run has finished, so a crash or kill -9 meanwhile leaves the old run intact.
- `--extend` continues a run that its time box (`train.max_minutes`) stopped, in a staging copy
  (`<out>/.<name>.continue`, the finished result left out) that is swapped in only when the longer run
  has finished; a copy left by a killed continuation is continued itself, not started again.
- One writer per run name: an exclusive `flock` on `<out>/.<name>.lock` (`scalerec.io.take_lock`,
  the lock every stage uses). The kernel drops it when the process dies (even by kill -9), so a
  stale lock never blocks the next run.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from scalerec.errors import UserError
from scalerec.io import LockHeld, drop_lock, take_lock

RUN_FILES = ("config.toml", "state.pt", "final.json", "metrics.jsonl", "model.safetensors", "meta.json")
"""Files that mark a directory as a run written by `scalerec train`."""


@dataclass
class RunDirClaim:
    """The dir the run writes (`work`), where it ends up (`target`) and the held lock."""

    target: Path
    work: Path
    lock: IO[str] | None

    @property
    def staged(self) -> bool:
        return self.work != self.target

    def commit(self) -> Path:
        """Swap a finished staging dir into place (old run removed only after the swap)."""
        if not self.staged:
            return self.target
        old = self.target.with_name(f".{self.target.name}.replaced-{os.getpid()}")
        if self.target.exists():
            os.replace(self.target, old)
        os.replace(self.work, self.target)
        shutil.rmtree(old, ignore_errors=True)
        self.work = self.target
        return self.target

    def release(self) -> None:
        if self.lock is not None:
            drop_lock(self.target, self.lock)
            self.lock = None


def holds_run(path: Path) -> bool:
    return path.is_dir() and any((path / f).exists() for f in RUN_FILES)


def staging_dir(target: Path) -> Path:
    return target.with_name(f".{target.name}.overwrite")


def _lock(target: Path) -> IO[str]:
    """Exclusive, non-blocking lock on the run name (`scalerec.io.take_lock`)."""
    try:
        return take_lock(target)
    except LockHeld as held:
        raise UserError(
            f"{target}: another `scalerec train` (pid {held.holder}) is writing this run; wait for it to "
            "finish or pick another --name"
        ) from None


def continue_dir(target: Path) -> Path:
    return target.with_name(f".{target.name}.continue")


def time_cut(target: Path) -> dict:
    """`final.json` of a finished run that its time box stopped and that left the state to go on from;
    a clear error for anything else (`--extend` has nothing to continue there)."""
    final_path = target / "final.json"
    if not final_path.is_file():
        raise UserError(f"{target}: --extend continues a finished run, and this dir holds none "
                        "(an interrupted run continues with --resume)")
    final = json.loads(final_path.read_text())
    if not final.get("stopped_by_time"):
        why = "stopped early on validation" if final.get("stopped_early") else "ran its whole budget"
        raise UserError(f"{final_path}: the run {why}; only a run its time box (train.max_minutes) "
                        "stopped can be extended")
    if not (target / "state.pt").is_file():
        raise UserError(f"{target}: no state.pt to continue from (it was not copied with the run?)")
    return final


def _stage_continuation(target: Path) -> Path:
    """The staging copy an extension trains in: the one a killed continuation left (it holds newer
    state), else a fresh copy of the run without its result (`final.json`: the copy is unfinished)."""
    work = continue_dir(target)
    if (work / "state.pt").is_file() and not (work / "final.json").exists():
        return work
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(target, work, ignore=shutil.ignore_patterns("final.json"))
    return work


def claim(
    target: Path, resume: bool, overwrite: bool, main: bool = True, extend: bool = False
) -> RunDirClaim:
    """Lock `target` and decide which dir this run writes; refuses to touch an existing run unless
    `resume` (continue it in place), `overwrite` (stage beside it, swap at the end) or `extend` (continue a
    time-stopped run in a staging copy, swap at the end)."""
    if sum((resume, overwrite, extend)) > 1:
        raise UserError("--resume, --overwrite and --extend exclude each other: continue an interrupted "
                        "run, replace a run, or continue a run its time box stopped")
    if not main:  # DDP: rank 0 holds the lock and decides; the others write nothing but RNG files
        if extend:
            return RunDirClaim(target, continue_dir(target), None)
        work = staging_dir(target) if overwrite and holds_run(target) else target
        return RunDirClaim(target, work, None)
    lock = _lock(target)
    try:
        if target.exists() and not target.is_dir():
            raise UserError(f"{target} exists and is not a directory; pick another --name or --out")
        if extend:
            time_cut(target)
            return RunDirClaim(target, _stage_continuation(target), lock)
        if resume:
            return RunDirClaim(target, target, lock)
        if holds_run(target) and not overwrite:
            raise UserError(
                f"{target} already holds a run; continue it with --resume {target}, or replace it with "
                "--overwrite (the old run is kept until the new one finishes)"
            )
        if target.is_dir() and not holds_run(target) and any(target.iterdir()):
            raise UserError(
                f"{target} exists and is not a run dir (it holds other files); pick another --name"
            )
        if overwrite and holds_run(target):
            work = staging_dir(target)
            shutil.rmtree(work, ignore_errors=True)  # an earlier unfinished --overwrite of ours
            work.mkdir(parents=True)
            return RunDirClaim(target, work, lock)
        target.mkdir(parents=True, exist_ok=True)
        return RunDirClaim(target, target, lock)
    except BaseException:
        drop_lock(target, lock)
        raise
