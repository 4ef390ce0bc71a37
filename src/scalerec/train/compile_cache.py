"""torch.compile's on-disk cache, one folder per invocation of a job that is stopped by design.

A sweep, or a benchmark driver that device calls resume, is cut by a `timeout` (or Ctrl-C) as a matter of
course. A worker killed while the compiler writes a cache entry can leave a truncated file that torch then
loads in every later process: on the CPU a compiled .so ("main.so: file too short"; a world_v6 rehearsal,
2026-12-07, then failed 15 of 40 runs in every call after the first, as each retry hit the same entry), so
no later call could finish the job. Here each invocation compiles into a folder of its own under the temp
dir (`TORCHINDUCTOR_CACHE_DIR`; Triton's cache lives beneath it), one per output dir, and the folder an
earlier invocation left is removed when the next starts. The cost is one compile per graph per invocation,
shared by its child processes (they inherit the variable). A cache dir the user set is used as it is.

No torch import: the variable is read when torch first compiles.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

COMPILE_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
COMPILE_CACHE_ROOT = "scalerec-compile-cache"
"""Under the system temp dir: one folder per output dir, holding the current invocation's cache only."""


def claim_compile_cache(out_dir: str | Path) -> Path | None:
    """Set this process's (and its children's) compile cache to a fresh folder for `out_dir`, removing the
    ones earlier invocations for it left; None, and nothing changed, when the variable is already set (by
    the user, or by a parent that claimed one). For a process that ends with its job (a benchmark driver);
    a library call uses `fresh_compile_cache`, which restores the environment."""
    if os.environ.get(COMPILE_CACHE_ENV):
        return None
    key = hashlib.sha1(str(Path(out_dir).resolve()).encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / COMPILE_CACHE_ROOT / key
    if root.is_dir():
        for old in root.iterdir():
            shutil.rmtree(old, ignore_errors=True)
    cache = root / f"{os.getpid()}-{time.time_ns()}"  # torch creates it on its first compile: a job that
    os.environ[COMPILE_CACHE_ENV] = str(cache)           # compiles nothing leaves nothing behind
    return cache


@contextlib.contextmanager
def fresh_compile_cache(out_dir: str | Path) -> Iterator[Path | None]:
    """`claim_compile_cache` for the duration of the block; the folder stays until the next invocation for
    `out_dir` (workers a kill orphaned may still be using it)."""
    cache = claim_compile_cache(out_dir)
    try:
        yield cache
    finally:
        if cache is not None:
            os.environ.pop(COMPILE_CACHE_ENV, None)
