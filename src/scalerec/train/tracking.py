"""Metrics sinks of a run: `metrics.jsonl` in the run dir (always), mirrored to MLflow
(`mlflow_tracker.py`, best effort) and optionally TensorBoard (`tensorboard_sink.py`).

The JSON lines file is the record other stages read; the mirrors are conveniences.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scalerec.errors import UserError
from scalerec.io import atomic_write
from scalerec.train import numerics
from scalerec.train.mlflow_tracker import MlflowTracker, default_tracking_uri

__all__ = ["MetricsLog", "MlflowTracker", "default_tracking_uri"]


class MetricsLog:
    """Append-only `metrics.jsonl` (+ optional MLflow / TensorBoard mirrors). Only rank 0 writes.

    Lines are strict JSON (`numerics.dumps`: a non-finite value becomes null and is listed under
    "nonfinite"), so any JSON reader can load the file of a diverged run."""

    def __init__(
        self, path: Path, tracker: MlflowTracker | None = None, enabled: bool = True, extra: Any = None
    ) -> None:
        self.path, self.tracker, self.enabled, self.extra = path, tracker, enabled, extra

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(numerics.dumps(record) + "\n")
        metrics = {k: v for k, v in record.items() if k != "step"}
        if self.tracker is not None:
            self.tracker.log_metrics(int(record.get("step", 0)), metrics)
        if self.extra is not None:
            self.extra.log_metrics(int(record.get("step", 0)), metrics)

    def close(self, status: str) -> None:
        """End the mirrors: MLflow gets the run's final status (FINISHED, FAILED or KILLED)."""
        if self.tracker is not None:
            self.tracker.finish(status)
        if self.extra is not None:
            self.extra.close()

    def truncate_after(self, step: int) -> None:
        """Drop lines past `step` (a resumed run rewrites them, so the file has no duplicates) and a
        cut last line (what a kill during a write leaves); a garbled line elsewhere is an error."""
        if not self.enabled or not self.path.is_file():
            return
        lines = [
            ln for ln in self.path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()
        ]
        keep = []
        for i, ln in enumerate(lines):
            try:
                rec = json.loads(ln)
            except json.JSONDecodeError:
                if i == len(lines) - 1:
                    break  # cut by a kill mid-write: the resumed run rewrites it
                raise UserError(
                    f"{self.path}:{i + 1}: not a JSON line; fix or remove the line to resume"
                ) from None
            if isinstance(rec, dict) and rec.get("step", 0) <= step:
                keep.append(ln)
        with atomic_write(self.path) as fh:
            fh.write("".join(ln + "\n" for ln in keep))
