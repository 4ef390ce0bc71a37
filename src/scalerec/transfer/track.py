"""MLflow tracking of a fine-tuning run, in the same store and experiment as training runs.

Tagged `kind=finetune` with strategy, target, pretrained run and its size, so a study's runs can
be filtered; the per-epoch curve (train loss, validation NDCG@10) and the test metrics are logged;
the run ends FINISHED, FAILED or KILLED like a training run (`scalerec.train.mlflow_tracker`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalerec.config import to_dict
from scalerec.train.mlflow_tracker import MlflowTracker, code_version, default_tracking_uri


def start(cfg: Any, pretrained: Path, out: Path) -> MlflowTracker | None:
    """An MLflow run for fine-tuning config `cfg` (None when `cfg.tracking_uri` is "off")."""
    if (cfg.tracking_uri or "").lower() == "off":
        return None
    uri = cfg.tracking_uri or default_tracking_uri(cfg.pretrained_root)
    tags = {
        "kind": "finetune",
        "strategy": cfg.strategy,
        "dataset": Path(cfg.data).name,
        "dataset_path": str(cfg.data),
        "pretrained": str(pretrained),
        "target_fraction": str(cfg.target_fraction),
        "seed": str(cfg.seed),
        "git_commit": code_version(),
    }
    return MlflowTracker(uri, "scalerec", out.name, {"finetune": to_dict(cfg)}, tags)


def log_summary(tracker: MlflowTracker | None, summary: dict[str, Any], run_dir: Path) -> None:
    """Curve points (x = epoch), test metrics and what the pretrained model was, into MLflow."""
    if tracker is None:
        return
    tracker.set_tags({"size": summary.get("pretrained_size") or "custom",
                      "encoder": summary.get("item_encoder") or "unknown"})
    for point in summary.get("curve") or []:
        tracker.log_metrics(int(point["epoch"]), {k: v for k, v in point.items() if "/" in k})
    step = len(summary.get("curve") or [])
    overall = (summary.get("test") or {}).get("overall") or {}
    cold = (summary.get("test") or {}).get("cold") or {}
    metrics = {f"test/{k}": v for k, v in overall.items() if k != "ci"}
    metrics.update({f"test_cold/{k}": v for k, v in cold.items() if k != "ci"})
    tracker.log_metrics(step, {**metrics, "targets_seen": summary.get("targets_seen", 0)})
    tracker.save(run_dir)
