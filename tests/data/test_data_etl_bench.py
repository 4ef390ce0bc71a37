"""benchmarks/etl.py measures the ETL's own memory, not its parent's.

On Linux a child's ru_maxrss starts at its parent's RSS high-water mark (fork copies it and exec
keeps it), so a benchmark that generated its dump in-process reported the generator's 4+ GiB as
the ETL's peak. The children now report their own VmHWM and the dump is written by a child too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bench_scripts import load_script

ETL = Path(__file__).resolve().parents[2] / "benchmarks" / "etl.py"


@pytest.fixture(scope="module")
def etl():
    return load_script("benchmarks/etl.py", "etl_bench")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_child_peak_is_its_own_not_the_parents(etl, tmp_path: Path) -> None:
    held = np.ones(700 * 2**20 // 8)  # the parent's high-water mark goes past 700 MiB
    out = tmp_path / "raw"
    cmd = [sys.executable, str(ETL), "--_synth", "--ratings", "2000", "--meta", "100", "--out", str(out)]
    row, _ = etl._run_child(cmd)
    assert held.sum() > 0
    assert row["peak_rss_gib"] < 0.6  # a 2,000-rating dump needs a few hundred MB at most
    assert Path(row["paths"]["ratings"]).is_file()


def test_make_dump_reports_the_generators_peak_and_disk(etl, tmp_path: Path, capsys) -> None:
    paths = etl._make_dump(tmp_path, 3_000, 200, seed=1)
    event = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert event["event"] == "synth" and event["ratings"] == 3_000
    assert 0 < event["peak_rss_gib"] < 0.6 and event["dump_gib"] > 0
    assert Path(paths["meta"]).is_file()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_rss_trace_names_prepare_steps(etl, tmp_path: Path) -> None:
    """`--rss-trace`: peaks per chain of scalerec.data functions, none above the child's own peak."""
    row = etl._measure(tmp_path, 20_000, 500, "1K", seed=2, shard_above_rows=0, rss_trace=True)
    steps = row["rss_by_step"]
    assert sum(row["s_by_step"].values()) > 0
    assert any(k.startswith("prepare_sharded>") for k in steps)
    assert list(steps.values()) == sorted(steps.values(), reverse=True)
    assert 0 < max(steps.values()) <= row["peak_rss_gib"] + 1e-3


def test_step_of_keeps_scalerec_data_frames_only(etl) -> None:
    import sys

    def prepare_sharded():  # stands in for a scalerec.data function: only its file name counts
        return sys._getframe()

    frame = prepare_sharded()
    assert etl._step_of(frame) == "other"  # this test file is not under scalerec/data
