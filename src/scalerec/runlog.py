"""Run directory and what a run prints: rank-0 console lines and the Rich progress bar.

Under DDP every process runs the same code; only rank 0 talks to the user and writes files,
so this module is where that rule lives. Every log line carries targets seen and FLOPs so far
(the scaling units), not only the step.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scalerec.errors import UserError


def rank() -> int:
    return int(os.environ.get("RANK", 0))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    return rank() == 0


def run_dir(out: str | Path, name: str) -> Path:
    """`<out>/<name>`; the name must be a plain directory name."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._=+-]*", name):
        raise UserError(f"run.name {name!r} must be a plain directory name (letters, digits, . _ = + -)")
    return Path(out) / name


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM (what `kill`, schedulers and container stops send) into KeyboardInterrupt for
    the block, so `finally` clauses run: the tracker marks the run KILLED instead of leaving it
    RUNNING forever. Only the main thread may set handlers; elsewhere this does nothing. (kill -9
    cannot be caught: a resume reopens that MLflow run.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def fmt_count(x: float) -> str:
    """1234567 → '1.23M' (targets, FLOPs)."""
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def log_line(record: dict[str, Any]) -> str:
    """One human-readable line from a metrics record."""
    parts = [
        f"step {record['step']}",
        f"targets {fmt_count(record['targets_seen'])}",
        f"flops {fmt_count(record['flops'])}",
    ]
    for key, value in record.items():
        if key in ("step", "targets_seen", "flops"):
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " | ".join(parts)


class LogClock:
    """When the training loop logs: every `every` steps, or once `seconds` passed since the last
    line (`timed`, single process only: DDP ranks must agree on when to all-reduce, and their
    clocks do not). A time check is a `perf_counter()` call, not a device sync."""

    def __init__(self, every: int, seconds: float, timed: bool = True, step: int = 0) -> None:
        self.every, self.seconds, self.timed = max(1, every), seconds, timed
        self.last_time, self.last_step = time.perf_counter(), step

    def due(self, step: int) -> bool:
        if step % self.every == 0:
            return True
        return self.timed and time.perf_counter() - self.last_time >= self.seconds

    def lap(self, step: int) -> tuple[float, int]:
        """(seconds since the last line, first step of this window); starts the next window."""
        now = time.perf_counter()
        out = (now - self.last_time, self.last_step + 1)
        self.last_time, self.last_step = now, step
        return out


class ProgressBar:
    """Rich progress over steps with rate, ETA and a free-text field (rank 0, terminals only).

    `advance` is cheap (no device sync) and may be called every step; Rich redraws ten times a
    second on its own thread, so the bar and its ETA move with time, not with log points. On a
    non-terminal stderr (a log file, CI) the bar is off and callers print log lines instead."""

    def __init__(
        self,
        total_steps: int,
        enabled: bool = True,
        start: int = 0,
        label: str = "train",
        console: Any = None,
    ) -> None:
        self.enabled = enabled and is_main()
        self.console = None
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console or Console(stderr=True)
        if not self.console.is_terminal:
            self.enabled = False
            return
        self.label = label
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(elapsed_when_finished=True),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task(label, total=total_steps, completed=start, info="")
        self.progress.start()

    def advance(self, step: int) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=step)

    def update(self, step: int, info: str) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=step, info=info)

    def phase(self, name: str | None = None) -> None:
        """Show what runs now (e.g. "valid", "test"); `None` = back to the bar's own label."""
        if self.enabled:
            self.progress.update(self.task, description=name or self.label)

    def print(self, line: str) -> None:
        if self.enabled:
            self.progress.console.print(line, highlight=False)
        elif is_main():
            print(line, flush=True)

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
            self.enabled = False
