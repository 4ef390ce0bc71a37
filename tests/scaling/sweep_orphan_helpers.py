"""A train_fn for tests/scaling/test_scaling_sweep_orphans.py, importable by name in spawned workers."""

from __future__ import annotations

import os
import time
from pathlib import Path


def slow_train(cfg, resume: bool = False) -> None:
    """Record this worker's pid, then train "forever" (a minute), as a long trunk would."""
    marks = Path(cfg.data.dataset).parents[1] / "pids"
    marks.mkdir(exist_ok=True)
    (marks / str(os.getpid())).touch()
    time.sleep(60)
