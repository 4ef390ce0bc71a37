"""A sweep compiles into a cache of its own invocation: an entry a killed worker left truncated cannot fail
every later call (world_v6's CPU rehearsal under train.compile, 2026-12-07: 15 of 40 runs failed in every
call after the first, each retry loading the same truncated .so)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scalerec.train.compile_cache import (
    COMPILE_CACHE_ENV,
    COMPILE_CACHE_ROOT,
    claim_compile_cache,
    fresh_compile_cache,
)

ROOT = Path(__file__).resolve().parents[2]


def test_each_invocation_gets_a_fresh_folder_and_the_users_own_cache_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv(COMPILE_CACHE_ENV, raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with fresh_compile_cache(tmp_path / "out") as first:
        assert first is not None and os.environ[COMPILE_CACHE_ENV] == str(first)
        assert not first.exists()                                   # nothing compiled yet: nothing written
        first.mkdir(parents=True)                                   # (torch makes it on its first compile)
        (first / "entry.so").write_bytes(b"")                      # what a killed compiler leaves
    assert COMPILE_CACHE_ENV not in os.environ                      # restored: the next call decides anew
    assert first.is_dir()                                           # orphaned workers may still use it
    with fresh_compile_cache(tmp_path / "out") as second:
        assert second != first and not first.exists()               # the stale one is gone
        assert second.parent == first.parent and second.parent.parent.name == COMPILE_CACHE_ROOT
        second.mkdir()
    with fresh_compile_cache(tmp_path / "other") as other:          # another sweep's cache is not touched
        assert other.parent != second.parent and second.is_dir()
    monkeypatch.setenv(COMPILE_CACHE_ENV, str(tmp_path / "mine"))
    with fresh_compile_cache(tmp_path / "out") as kept:
        assert kept is None and os.environ[COMPILE_CACHE_ENV] == str(tmp_path / "mine")
    assert second.is_dir()


def _sweep(tmp: Path, out: Path, seed: int, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT / "src"), **env_extra}
    if COMPILE_CACHE_ENV not in env_extra:
        env.pop(COMPILE_CACHE_ENV, None)
    cmd = [sys.executable, "-m", "scalerec", "sweep", str(ROOT / "configs/sweeps/world_v2_smoke.toml"),
           "--out", str(out), "--parallel", "1", "--only", "size=tiny", "--only", f"seed={seed}",
           "--set", "base.train.compile=true", "--set", "lr_search=[1.0]"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _truncate_compiled(tmp: Path) -> int:
    """What a worker killed mid-compile leaves: every compiled library in any cache under `tmp`, cut short."""
    libs = list(tmp.rglob("*.so"))
    for lib in libs:
        lib.write_bytes(lib.read_bytes()[:64])
    return len(libs)


def test_a_truncated_cache_entry_from_a_killed_call_does_not_fail_the_next(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    first = _sweep(tmp, tmp_path / "out", 0, {})
    assert first.returncode == 0 and "runs ok" in first.stdout + first.stderr, first.stderr[-2000:]
    if not _truncate_compiled(tmp):
        pytest.skip("this torch wrote no compiled library on this machine: nothing to truncate")
    # control: the same call with that cache kept (as a user's own TORCHINDUCTOR_CACHE_DIR is) fails on this
    # torch, so the truncation is a real poison; if this torch recovers from it, there is nothing to test
    used = next((tmp / COMPILE_CACHE_ROOT).glob("*/*"), None) or next(tmp.glob("torchinductor_*"))
    poisoned = _sweep(tmp, tmp_path / "ctl", 1, {COMPILE_CACHE_ENV: str(used)})
    if "failed" not in poisoned.stdout + poisoned.stderr:
        pytest.skip("this torch recompiles over a truncated cache entry by itself")
    again = _sweep(tmp, tmp_path / "out", 1, {})                      # the next call of the real sweep
    log = again.stdout + again.stderr
    clean = "0 failed" in log and "failed " not in log.replace("0 failed", "")
    assert again.returncode == 0 and clean, log[-3000:]


def test_a_driver_claims_once_and_its_children_keep_its_folder(tmp_path, monkeypatch):
    """benchmarks/accuracy.py and transfer_v2.py claim a folder for the process; the cells they start as
    child processes inherit the variable and must not claim (and so delete) it again."""
    monkeypatch.delenv(COMPILE_CACHE_ENV, raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    parent = claim_compile_cache(tmp_path / "work")
    assert parent is not None and os.environ[COMPILE_CACHE_ENV] == str(parent)
    parent.mkdir(parents=True)                                                    # its first compile
    assert claim_compile_cache(tmp_path / "work") is None and parent.is_dir()     # a child's call
    child = subprocess.run([sys.executable, "-c", "import os; print(os.environ['TORCHINDUCTOR_CACHE_DIR'])"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == str(parent)
