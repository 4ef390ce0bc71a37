"""Atomic writes: a failure inside the block leaves neither a partial output nor a temporary."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalerec.io import atomic_dir, atomic_write, read_json, sha256_file, write_json


def test_atomic_dir_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("two")
        raise RuntimeError("killed")
    assert (target / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_dir_cleans_stale_temporaries(tmp_path: Path) -> None:
    stale = tmp_path / ".out.tmp-99999"
    stale.mkdir()
    (stale / "half.parquet").write_text("x")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "ok").write_text("1")
    assert not stale.exists()


def test_atomic_write_and_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_json(path, {"a": 1})
    assert read_json(path) == {"a": 1}
    with pytest.raises(ValueError), atomic_write(path) as fh:
        fh.write("{broken")
        raise ValueError
    assert read_json(path) == {"a": 1}
    assert len(sha256_file(path)) == 64
