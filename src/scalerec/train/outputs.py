"""Who may write a run dir, and how a re-run replaces one without destroying it first (issue 22).

Three rules, kept here so the trainer only asks "give me the dir to write":

- A fresh `train` into a dir that already holds a run refuses, naming `--resume` and `--overwrite`.
- `--overwrite` trains into a staging sibling (`<out>/.<name>.overwrite`) and swaps it in only when
  the new run has finished, so a crash or kill -9 meanwhile leaves the old run intact.
- One writer per run name: an exclusive `flock` on `<out>/.<name>.lock` (`scalerec.io.take_lock`,
  the lock every stage uses). The kernel drops it when the process dies (even by kill -9), so a
  stale lock never blocks the next run.
"""

from __future__ import annotations

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


def claim(target: Path, resume: bool, overwrite: bool, main: bool = True) -> RunDirClaim:
    """Lock `target` and decide which dir this run writes; refuses to touch an existing run unless
    `resume` (continue it in place) or `overwrite` (stage beside it, swap at the end)."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other: continue the run, or replace it")
    if not main:  # DDP: rank 0 holds the lock and decides; the others write nothing but RNG files
        work = staging_dir(target) if overwrite and holds_run(target) else target
        return RunDirClaim(target, work, None)
    lock = _lock(target)
    try:
        if target.exists() and not target.is_dir():
            raise UserError(f"{target} exists and is not a directory; pick another --name or --out")
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
