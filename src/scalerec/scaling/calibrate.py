"""Measured throughput for `--dry-run` and the sweep's ETA: a short calibration run per size, cached.

Three short runs of the run's own config with the real trainer on this device (so compile, data
loading, the evaluation set and a busy machine are all in the numbers):
  A: 2 steps, validation every step (2 validations) → T_A
  B: 2 steps, validation only at the end             → T_B
  C: 2 + k steps, validation only at the end         → T_C
seconds per step = (T_C − T_B) / k, seconds per extra validation = T_A − T_B, fixed cost
(setup, compile, one validation, the test, writing the run) = T_B − 2 · step. The cache key is the
device, the size and the resolved config minus what does not change the cost per step (run length,
LR, seed, output paths; the subset or training-user fraction of one dataset).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from scalerec.config import dumps_toml
from scalerec.errors import UserError
from scalerec.io import atomic_write
from scalerec.scaling.spec import PlannedRun, SweepSpec

CALIBRATION_STEPS = 20
"""k: steps timed per size (enough to average out a busy machine's jitter on small models)."""


def cache_path() -> Path:
    root = os.environ.get("SCALEREC_CACHE") or Path.home() / ".cache" / "scalerec"
    return Path(root) / "calibration.json"


def _device_name(device: str) -> str:
    from scalerec import device as dev

    return dev.describe(dev.pick_device(device))


def calibration_key(spec: SweepSpec, run: PlannedRun) -> str | None:
    """Device + size + config (normalised: no run length, LR, seed, paths; the dataset's family);
    None when the spec's device is not on this machine (a GPU sweep planned on a laptop)."""
    try:
        device = _device_name(spec.device)
    except UserError:
        return None

    cfg = copy.deepcopy(run.cfg)
    t = cfg.train
    t.epochs, t.max_steps, t.max_targets, t.max_flops, t.stop_after_steps = 1.0, None, None, None, None
    t.lr, t.warmup_steps, t.decay_steps = 1.0, None, None
    cfg.run.seed, cfg.run.out, cfg.run.name = 0, "", ""
    cfg.data.dataset, cfg.data.tokens, cfg.data.train_fraction = spec.dataset, None, 1.0
    text = f"{device}\n{run.size}\n{dumps_toml(cfg)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_cache() -> dict[str, Any]:
    path = cache_path()
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}  # a damaged cache is rebuilt, never fatal


def _write_cache(key: str, value: dict[str, Any]) -> None:
    cache = _read_cache()
    cache[key] = value
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        fh.write(json.dumps(cache, indent=1, sort_keys=True) + "\n")


def _timed(cfg: Any, root: Path, name: str, steps: int, every: int) -> float:
    from scalerec.train import train

    c = copy.deepcopy(cfg)
    c.run.out, c.run.name, c.run.progress, c.run.tracking_uri = str(root), name, False, "off"
    t = c.train
    t.max_steps, t.max_targets, t.max_flops, t.stop_after_steps = steps, None, None, None
    t.warmup_steps, t.decay_steps = None, None
    c.eval.every_steps, c.eval.patience = every, 0
    start = time.perf_counter()
    train(c)
    return time.perf_counter() - start


def measure(cfg: Any, k: int = CALIBRATION_STEPS) -> dict[str, float]:
    """{"step_s", "eval_s", "fixed_s"} of `cfg` on its device (three short runs in a temp dir)."""
    with tempfile.TemporaryDirectory(prefix="scalerec-cal-") as tmp:
        root = Path(tmp)
        t_b = _timed(cfg, root, "b", 2, 10**9)
        t_a = _timed(cfg, root, "a", 2, 1)
        t_c = _timed(cfg, root, "c", 2 + k, 10**9)
    step = max(t_c - t_b, 0.0) / k
    return {"step_s": step, "eval_s": max(t_a - t_b, 0.0), "fixed_s": max(t_b - 2 * step, 0.0), "k": k}


def calibration(spec: SweepSpec, run: PlannedRun, measure_now: bool = True) -> dict | None:
    """The cached calibration of `run`'s size and config; measured (and cached) when missing and
    `measure_now`, else None."""
    key = calibration_key(spec, run)
    if key is None:
        if measure_now:
            raise UserError(
                f"sweep device {spec.device!r} is not available here: run the dry run on the machine "
                "that will train, or pass --no-calibrate for a FLOP-rate estimate"
            )
        return None
    cached = _read_cache().get(key)
    if cached is not None or not measure_now:
        return cached
    value = {
        **measure(run.cfg),
        "device": _device_name(spec.device),
        "size": run.size,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    _write_cache(key, value)
    return value
