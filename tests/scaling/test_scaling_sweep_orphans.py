"""A sweep's worker processes end when the sweep does (a device call's `timeout` kills only the sweep)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from scalerec.scaling.spec import SweepSpec
from scalerec.scaling.sweep import run_sweep
from sweep_orphan_helpers import slow_train
spec = SweepSpec(dataset={ds!r}, sizes=["tiny", "xs"], subsets=["1K"], seeds=[0], epochs=1.0,
                 device="cpu", base={{"model": {{"item_encoder": "id"}}}})
run_sweep(spec, {out!r}, parallel=2, train_fn=slow_train)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (dead, not yet reaped by its new parent) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for zombies")
def test_workers_stop_when_their_sweep_is_killed(tmp_path):
    sub = tmp_path / "ds" / "subsets" / "1K"
    sub.mkdir(parents=True)
    (sub / "card.json").write_text(json.dumps({"n_interactions": 1000, "n_users": 100, "n_items": 50}))
    code = SCRIPT.format(here=str(HERE), ds=str(tmp_path / "ds"), out=str(tmp_path / "out"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), str(HERE)])}
    sweep = subprocess.Popen([sys.executable, "-c", code], env=env)
    pids_dir = tmp_path / "ds" / "pids"
    deadline = time.monotonic() + 60
    while len(list(pids_dir.glob("*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = [int(p.name) for p in pids_dir.glob("*")]
    try:
        assert len(workers) == 2, "the two workers never started training"
        sweep.send_signal(signal.SIGTERM)  # what `timeout` does to the sweep, and only to it
        sweep.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "a worker trained on after its sweep was killed"
    finally:
        sweep.kill()
        for p in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
