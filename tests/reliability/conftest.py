"""Reliability tests reuse the training tests' tiny world (loaded by path: test dirs are not packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "train_world", Path(__file__).resolve().parents[1] / "train" / "conftest.py"
)
_world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_world)
write_world = _world.write_world


@pytest.fixture(scope="session")
def train_world(tmp_path_factory) -> tuple[Path, Path]:
    return write_world(tmp_path_factory.mktemp("world"))
