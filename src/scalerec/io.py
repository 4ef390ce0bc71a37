"""Atomic file and directory writes, so a killed run never leaves output a later stage would accept.

Everything is written under a temporary sibling name and moved into place with `os.replace` once
complete; a rerun removes stale temporaries of its own target first (those of dead processes only).

Stage outputs (`output_dir`) add the rules that keep a user's files safe: a stage never deletes
a path it did not create. Its output dir carries a marker file (`MARKER`) naming the stage; an
existing non-empty `--out` without the same stage's marker is an error, as is an `--out` that is
a file, that holds or lies inside one of the stage's inputs, or that another process is writing
(a lock file beside it). A previous output of the same stage is replaced only when the caller
allows it (`overwrite=True`), and only after the new one is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from scalerec.errors import UserError


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temporaries(path: Path) -> None:
    """Remove leftovers of earlier killed writers of `path` (never those of a live process)."""
    if not path.parent.exists():
        return
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _pid_alive(int(pid)):
            continue
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory that replaces `path` only if the block finishes without error."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is an existing file; an output directory cannot replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(path)
    tmp = _tmp_name(path)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(path)
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temporary file for writing that replaces `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=str)
        fh.write("\n")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, streamed so multi-GB dumps hash in bounded memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------ stage outputs

MARKER = ".scalerec-output"
"""File in every stage output dir: JSON `{"stage": ...}`. Only a dir holding the same stage's
marker may be replaced by that stage."""


def output_stage(path: str | Path) -> str | None:
    """The stage that wrote output dir `path` (its marker), or None (no marker, unreadable marker)."""
    try:
        stage = read_json(Path(path) / MARKER).get("stage")
    except (OSError, ValueError, AttributeError):
        return None
    return stage if isinstance(stage, str) else None


def check_output(
    out: str | Path,
    stage: str,
    inputs: list[Path] | tuple[Path, ...] = (),
    overwrite: bool = False,
    legacy_marker: str | None = None,
) -> None:
    """Raise `UserError` unless `out` may be written by `stage` (rules in the module docstring).

    `legacy_marker`: a file name that also identifies a previous output of this stage written
    before markers existed (e.g. a dataset dir's `card.json`).
    """
    out = Path(out)
    where = out.resolve()
    for p in inputs:
        src = Path(p).resolve()
        if src == where or where in src.parents:
            raise UserError(f"--out {out} holds the input {p}; writing there would delete it")
        if Path(p).is_dir() and src in where.parents:
            raise UserError(f"--out {out} lies inside the input {p}: choose a path outside it")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file, not a directory: choose another path")
    if not out.is_dir() or not any(out.iterdir()):
        return
    found = output_stage(out)
    if found is None and legacy_marker and (out / legacy_marker).is_file():
        found = stage
    if found != stage:
        what = f"a `{found}` output" if found else "not an output of this tool"
        raise UserError(
            f"--out {out} exists, is not empty and is {what} (no {MARKER} naming `{stage}`); "
            "choose a new or empty directory (nothing was deleted)"
        )
    if not overwrite:
        raise UserError(f"--out {out} holds a previous `{stage}` output; pass --overwrite to replace it")


class LockHeld(UserError):
    """Another live process holds the lock; `holder` is what it wrote there (its pid)."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


def take_lock(path: str | Path, what: str | None = None) -> IO[str]:
    """Exclusive, non-blocking `flock` on `.NAME.lock` beside `path`, returned open (closing it, or
    the process dying in any way, kill -9 included, releases it: no pid files to judge stale).

    The lock file is removed by `drop_lock`; a process that opened the old file just before its
    removal sees a different inode after locking and tries again, so two writers never both win.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    for _ in range(100):
        fh = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 - held open while writing
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "starting"
            fh.close()
            raise LockHeld(
                f"{what or path} is being written by another process (pid {holder}); wait for it to "
                "finish",
                holder,
            ) from None
        try:
            current = os.stat(lock).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            return fh
        fh.close()  # we locked a file its previous holder had just removed: take the new one
    raise UserError(f"could not take the lock {lock}")


def drop_lock(path: str | Path, fh: IO[str]) -> None:
    """Release a `take_lock` lock, removing its file first (while still held, see `take_lock`)."""
    path = Path(path)
    Path(path).with_name(f".{path.name}.lock").unlink(missing_ok=True)
    fh.close()


@contextlib.contextmanager
def write_lock(path: str | Path) -> Iterator[Path]:
    """Hold `.NAME.lock` beside `path` while writing it; a live holder is a `UserError` naming its
    pid. A killed writer's lock needs no clean-up: the kernel dropped its `flock`."""
    fh = take_lock(path)
    try:
        yield Path(path).with_name(f".{Path(path).name}.lock")
    finally:
        drop_lock(path, fh)


@contextlib.contextmanager
def output_dir(
    out: str | Path,
    stage: str,
    inputs: list[Path] | tuple[Path, ...] = (),
    overwrite: bool = False,
    legacy_marker: str | None = None,
) -> Iterator[Path]:
    """Check, lock and atomically write a stage's output dir; yields the temporary dir to fill.

    On success the marker is added and the temporary dir replaces `out` (an earlier output is
    removed only then); on any error nothing at `out` changes.
    """
    out = Path(out)
    target = out.resolve()  # `.` or `..` have no name to put a temporary beside
    if target.parent == target:
        raise UserError(f"--out {out} is a filesystem root: choose a directory below it")
    with write_lock(target):
        check_output(out, stage, inputs, overwrite, legacy_marker)
        with atomic_dir(target) as tmp:
            yield tmp
            write_json(tmp / MARKER, {"stage": stage})
