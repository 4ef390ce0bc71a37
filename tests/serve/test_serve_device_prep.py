"""What the serving benchmark hands a GPU host without polars (`serve_model.py --prepare-device`), the
device call's summary, and serve.py's `--run` options (benchmarks/device/serve_rank_call.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench_scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


serve_model = load_script("benchmarks/serve_model.py")
summary = load_script("benchmarks/device/serve_rank_summary.py")


@pytest.fixture()
def src_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI subprocesses import this checkout's scalerec."""
    paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def test_prepare_device_writes_the_subset_and_the_world_spec(tmp_path: Path, src_on_path: None) -> None:
    dest = tmp_path / "dev"
    world = serve_model.prepare_device(dest, tmp_path / "w", 300, 3000, 1, "1K")
    card = json.loads((dest / "train_ds" / "card.json").read_text())
    assert (dest / "train_ds" / "interactions.parquet").is_file()
    assert (dest / "train_ds" / "items.parquet").is_file()
    assert card["n_interactions"] == world["train_interactions"] and card["n_interactions"] <= 1100
    spec = json.loads((dest / "world.json").read_text())
    assert (spec["items"], spec["interactions"], spec["seed"], spec["train_subset"]) == (300, 3000, 1, "1K")
    assert any("data prepare" in c for c in spec["commands"])
    with pytest.raises(SystemExit, match="exists"):
        serve_model.prepare_device(dest, tmp_path / "w", 300, 3000, 1, "1K")
    with pytest.raises(SystemExit, match="no such subset"):  # the world was prepared with 1K only
        serve_model.prepare_device(tmp_path / "dev2", tmp_path / "w", 300, 3000, 1, "2K")
    assert not (tmp_path / "dev2").exists()


def test_serve_run_options_go_together() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve.py"), "--model", "text",
                           "--run", "somewhere"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 2 and "go together" in done.stderr


def test_summary_reads_the_logs_and_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ranking.log").write_text("\n".join(json.dumps(r) for r in [
        {"event": "setup", "device": "cuda", "users": 100000, "items": 3000000},
        {"event": "scalerec_model", "user_encode_s": 1.5, "item_encode_s": 0.1, "rank_s": 20.0,
         "total_s": 21.6, "ndcg@10": 0.05},
        {"event": "exact", "checked_users": 256, "rank_agreement_vs_fp64": 1.0},
        {"event": "bar", "pass": True},
    ]) + "\nnot json\n")
    monkeypatch.setattr(sys, "argv", ["serve_rank_summary.py", str(tmp_path)])
    summary.main()
    text = (tmp_path / "summary.txt").read_text()
    assert "total 21.6 s = user encode 1.5 + item encode 0.1 + rank 20.0" in text
    assert "exact agreement 1.0 on 256 users" in text
    assert "train: MISSING" in text and "serve: MISSING" in text and "catalog: MISSING" in text


def test_summary_prints_the_serving_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    split = {"requests": 200, "encode": {"p50": 3.1, "mean": 3.2}, "search": {"p50": 0.9, "mean": 1.0}}
    (tmp_path / "serve.log").write_text("\n".join(json.dumps(r) for r in [
        {"phase": "ivf", "split": split, "p50_ms": 5.0, "index": {"nprobe": 137}, "server": {}},
        {"bar": {"p50_ms<=10": True}, "commit": "abc"},
    ]) + "\n")
    monkeypatch.setattr(sys, "argv", ["serve_rank_summary.py", str(tmp_path)])
    summary.main()
    assert 'split p50 ms {"encode": 3.1, "search": 0.9}' in (tmp_path / "summary.txt").read_text()
