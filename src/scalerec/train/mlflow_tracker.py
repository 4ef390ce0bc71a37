"""MLflow mirror of a run (training or fine-tuning): one store, tags to find runs, honest status.

- **One default store, whatever is installed**: MLflow's file store under `<runs root>/mlruns`.
  Before, installing full `mlflow` (which brings SQLAlchemy) silently moved the default to
  `sqlite:///<root>/mlflow.db`, so old and new runs ended up in different stores. The file store
  works with `mlflow-skinny` (our dependency) and with full `mlflow`; MLflow 3 asks for an explicit
  opt-in (`MLFLOW_ALLOW_FILE_STORE`), which we give. `--tracking-uri` picks any other store.
- **Tags** (dataset, size, encoder, recipe, seed, git commit, kind) so runs can be filtered.
- **Status**: the caller ends the run FINISHED, FAILED (exception) or KILLED (Ctrl-C, SIGTERM);
  the MLflow run id is stored in the run dir (`mlflow.json`), so `--resume` continues the same
  MLflow run instead of opening a second one.
- Never fatal: MLflow is a convenience; any failure disables it with one warning.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalerec.io import atomic_write, read_json
from scalerec.train import numerics

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

RUN_FILE = "mlflow.json"
"""Run-dir file holding the MLflow tracking URI and run id (read on resume)."""


def default_tracking_uri(runs_root: str | Path) -> str:
    """The file store `<runs root>/mlruns`, whichever MLflow flavour is installed (see module doc)."""
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return (Path(runs_root).resolve() / "mlruns").as_uri()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`git describe --always --dirty` of the source tree, or "unknown" outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class MlflowTracker:
    """One MLflow run through `MlflowClient` (no global state); every call is never fatal.

    `resume_run_id` reopens that run (status back to RUNNING) instead of creating one."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str,
        params: dict[str, Any],
        tags: dict[str, str] | None = None,
        resume_run_id: str | None = None,
    ) -> None:
        self.client: MlflowClient | None = None
        self.run_id: str | None = None
        self.uri = uri
        try:
            from mlflow.tracking import MlflowClient

            registry = uri if uri.startswith(("http", "databricks")) else "file:///dev/null"
            client = MlflowClient(tracking_uri=uri, registry_uri=registry)
            self.client = client
            if resume_run_id and self._reopen(client, resume_run_id):
                return
            exp_id = self._experiment(client, experiment)
            self.run_id = client.create_run(exp_id, run_name=run_name, tags=tags or {}).info.run_id
            flat = {k: str(v)[:500] for k, v in _flatten(params).items()}
            self._call("log_batch", params=[_param(k, v) for k, v in flat.items()])
        except Exception as exc:  # noqa: BLE001 - tracking must never stop training
            self._disable(exc)

    @staticmethod
    def _experiment(client: MlflowClient, name: str) -> str:
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return client.create_experiment(name)
        except Exception:  # noqa: BLE001 - a parallel sweep worker created it first
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def _reopen(self, client: MlflowClient, run_id: str) -> bool:
        try:
            client.get_run(run_id)
            client.update_run(run_id, status="RUNNING")
        except Exception as exc:  # noqa: BLE001 - store moved or wiped: start a new run instead
            warnings.warn(
                f"MLflow run {run_id} not found ({type(exc).__name__}); starting a new one", stacklevel=3
            )
            return False
        self.run_id = run_id
        return True

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

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        if self.client is None:
            return
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k.replace("@", "_at_"), float(v), ts, step) for k, v in metrics.items() if _num(v)]
        self._call("log_batch", metrics=items)

    def set_tags(self, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self._call("set_tag", key=k, value=str(v))

    def finish(self, status: str = "FINISHED") -> None:
        self._call("set_terminated", status=status)

    def save(self, run_dir: Path) -> None:
        """Record this MLflow run in the run dir, so a resume continues it."""
        if self.client is None or self.run_id is None:
            return
        with atomic_write(run_dir / RUN_FILE) as fh:
            fh.write(numerics.dumps({"tracking_uri": self.uri, "run_id": self.run_id}, indent=2) + "\n")


def saved_run_id(run_dir: Path, uri: str) -> str | None:
    """The MLflow run id recorded in `run_dir` for store `uri` (None: absent, other store, unreadable)."""
    path = run_dir / RUN_FILE
    try:
        rec = read_json(path) if path.is_file() else {}
    except (OSError, ValueError):
        return None
    return rec.get("run_id") if isinstance(rec, dict) and rec.get("tracking_uri") == uri else None


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
