"""DDP with 2 gloo processes on CPU follows the same loss curve as 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train_loop import tiny_cfg

from scalerec.train import train
from scalerec.train.checkpoint import load_state


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(run_dir: Path) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["train/loss"] for x in lines if "train/loss" in x]


def test_two_gloo_processes_match_one(world, tmp_path):
    data, tokens = world
    extra = [
        "model.dropout=0.0",
        "train.log_every=1",
        "train.max_steps=5",
        "eval.every_steps=5",
        "train.grad_accum=2",
    ]
    torch.set_num_threads(1)
    one = train(tiny_cfg(world, tmp_path, "one", *extra))
    args = [
        f"data.dataset={data}",
        f"data.tokens={tokens}",
        "data.max_len=8",
        f"run.out={tmp_path}",
        "run.name=two",
        "run.tracking_uri=off",
        "run.progress=false",
        "train.batch_size=16",
        "train.negatives=16",
        "train.lr=3e-3",
        *extra,
    ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        str(Path(__file__).with_name("ddp_worker.py")),
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = tmp_path / "two"
    assert _losses(two) == pytest.approx(_losses(one.run_dir), rel=1e-5)
    a, b = load_state(one.run_dir)["model"], load_state(two)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert json.loads((two / "final.json").read_text())["targets_seen"] == one.final["targets_seen"]


def _torchrun(args: list[str], slow_reader: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", str(Path(__file__).with_name("ddp_worker.py")), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCALEREC_TEST_SLOW_READER": "1" if slow_reader else "0"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def test_a_time_stopped_ddp_run_extends_to_the_uncut_run(world, tmp_path):
    """`--extend` under DDP: rank 0 copies the run into the staging dir before any rank restores from it,
    every rank (its own RNG file included) goes on, rank 0 moves the staging dir back only once every rank
    has read the best weights from it (rank 1 reads late here), and the longer run equals the uncut one."""
    data, tokens = world
    args = [f"data.dataset={data}", f"data.tokens={tokens}", "data.max_len=8", f"run.out={tmp_path}",
            "run.tracking_uri=off", "run.progress=false", "train.batch_size=16", "train.negatives=16",
            "train.lr=3e-3", "train.log_every=1", "train.max_steps=10", "eval.every_steps=5"]
    uncut = _torchrun([*args, "run.name=uncut"])
    assert uncut.returncode == 0, uncut.stderr[-3000:]
    cut = _torchrun([*args, "run.name=cut", "train.max_minutes=1e-9"])
    assert cut.returncode == 0, cut.stderr[-3000:]
    assert json.loads((tmp_path / "cut" / "final.json").read_text())["steps"] == 5
    longer = _torchrun(["--extend", *args, "run.name=cut", "train.max_minutes=60"], slow_reader=True)
    assert longer.returncode == 0, longer.stderr[-3000:]
    final = json.loads((tmp_path / "cut" / "final.json").read_text())
    assert final["steps"] == 10 and not final["stopped_by_time"]
    assert _losses(tmp_path / "cut") == pytest.approx(_losses(tmp_path / "uncut"), rel=1e-6)
    a, b = load_state(tmp_path / "uncut")["model"], load_state(tmp_path / "cut")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
