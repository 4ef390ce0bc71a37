"""Metrics sinks of a run: `metrics.jsonl` in the run dir (always) and MLflow (best effort).

The JSON lines file is the record other stages read; MLflow is a convenience, so it is imported
lazily, points at a local store under the runs root by default (SQLite when SQLAlchemy is
installed, else MLflow's file store), and any failure disables it with one warning instead of
killing a training run.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

from scalerec.errors import UserError
from scalerec.io import atomic_write
from scalerec.train import numerics


def default_tracking_uri(runs_root: str | Path) -> str:
    """sqlite:///<root>/mlflow.db when SQLAlchemy is importable, else file:<root>/mlruns."""
    root = Path(runs_root).resolve()
    try:
        import sqlalchemy  # noqa: F401

        return f"sqlite:///{root / 'mlflow.db'}"
    except ImportError:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        return (root / "mlruns").as_uri()


class MlflowTracker:
    """One MLflow run through `MlflowClient` (no global state); every call is never fatal."""

    def __init__(self, uri: str, experiment: str, run_name: str, params: dict[str, Any]) -> None:
        self.client, self.run_id = None, None
        try:
            from mlflow.tracking import MlflowClient

            registry = uri if uri.startswith(("http", "databricks")) else "file:///dev/null"
            self.client = MlflowClient(tracking_uri=uri, registry_uri=registry)
            exp = self.client.get_experiment_by_name(experiment)
            exp_id = exp.experiment_id if exp else self.client.create_experiment(experiment)
            self.run_id = self.client.create_run(exp_id, run_name=run_name).info.run_id
            flat = {k: str(v)[:500] for k, v in _flatten(params).items()}
            self._call("log_batch", params=[_param(k, v) for k, v in flat.items()])
        except Exception as exc:  # noqa: BLE001 - tracking must never stop training
            self._disable(exc)

    def _disable(self, exc: Exception) -> None:
        warnings.warn(f"MLflow tracking disabled: {type(exc).__name__}: {exc}"[:300], stacklevel=3)
        self.client = None

    def _call(self, method: str, **kwargs: Any) -> None:
        if self.client is None:
            return
        try:
            getattr(self.client, method)(self.run_id, **kwargs)
        except Exception as exc:  # noqa: BLE001
            self._disable(exc)

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        if self.client is None:
            return
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k.replace("@", "_at_"), float(v), ts, step) for k, v in metrics.items() if _num(v)]
        self._call("log_batch", metrics=items)

    def finish(self, status: str = "FINISHED") -> None:
        self._call("set_terminated", status=status)


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


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _param(key: str, value: str) -> Any:
    from mlflow.entities import Param

    return Param(key, value)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
