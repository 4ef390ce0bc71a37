"""The CLI surface: every stage answers --help with real usage, and bad input is one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scalerec.cli import app

runner = CliRunner()

STAGES = [
    ["data", "synth"],
    ["data", "prepare"],
    ["data", "card"],
    ["text", "train"],
    ["train"],
    ["evaluate"],
    ["sweep"],
    ["fit"],
    ["report"],
    ["finetune"],
    ["transfer-report"],
    ["recommend"],
    ["serve"],
    ["demo"],
]


def test_root_help_lists_every_stage() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for stage in {s[0] for s in STAGES}:
        assert stage in result.output


@pytest.mark.parametrize("argv", STAGES, ids=lambda a: " ".join(a))
def test_stage_help_is_real_usage(argv: list[str]) -> None:
    result = runner.invoke(app, [*argv, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "--" in result.output  # documents at least one option


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scalerec", *args], capture_output=True, text=True, timeout=120
    )


def test_missing_input_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = _run(
        "data",
        "prepare",
        "--source",
        "amazon2018",
        "--ratings",
        str(tmp_path / "nope.csv"),
        "--out",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "nope.csv" in proc.stderr


def test_malformed_config_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlr = 'fast'\n")
    proc = _run("train", "--data", str(tmp_path), "--config", str(bad), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "train.lr" in proc.stderr or "not found" in proc.stderr


def test_unknown_override_key_is_named(tmp_path: Path) -> None:
    proc = _run("train", "--data", str(tmp_path), "--set", "train.lrr=1", "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2
    assert "train.lrr" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_rejects_an_unknown_query_engine(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    proc = _run("serve", str(tmp_path / "no-run"), "--engine", "fp8")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "--engine must be one of eager, jit, int8" in proc.stderr
