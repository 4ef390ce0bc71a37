"""MLflow goes to a local store by default and can never stop a run; metrics.jsonl is always written."""

from __future__ import annotations

import json
import warnings

import torch
from test_train_loop import tiny_cfg

from scalerec.train import train
from scalerec.train.tracking import MlflowTracker


def test_default_local_store_and_broken_uri(world, tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_cfg(world, tmp_path, "tracked", "train.max_steps=2", "run.tracking_uri=none")
    assert cfg.run.tracking_uri is None
    s = train(cfg)
    assert (tmp_path / "mlruns").is_dir() or (tmp_path / "mlflow.db").is_file()
    assert s.completed and (s.run_dir / "metrics.jsonl").is_file()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracker = MlflowTracker("bogus-scheme://nowhere", "x", "y", {"a": 1})
        tracker.log_metrics(1, {"loss": 1.0})
        tracker.finish()
    assert tracker.client is None and any("MLflow tracking disabled" in str(w.message) for w in caught)
    lines = [json.loads(x) for x in (s.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 2 and any(k.startswith("test/") for k in lines[-1])
