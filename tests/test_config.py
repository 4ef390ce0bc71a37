"""The config precedence (defaults < TOML < --set), type conversion and unknown-key errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from scalerec.config import dumps_toml, from_dict, load, tomllib
from scalerec.errors import UserError


@dataclass
class Inner:
    d: int = 4
    kind: Literal["a", "b"] = "a"
    lens: dict[str, int] = field(default_factory=lambda: {"title": 3})
    path: str | None = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    lr: float = 1e-3
    ks: tuple[int, ...] = (1, 5)
    flag: bool = False


def test_precedence_defaults_toml_then_overrides(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("lr = 0.5\n[inner]\nd = 16\nkind = 'b'\n")
    cfg = load(Outer, toml=toml, overrides=["inner.d=32", "flag=true"])
    assert cfg.inner.d == 32  # --set beats TOML
    assert cfg.inner.kind == "b"  # TOML beats default
    assert cfg.lr == 0.5
    assert cfg.flag is True
    assert cfg.ks == (1, 5)  # default kept


def test_round_trip_through_toml() -> None:
    cfg = load(Outer, overrides=["ks=1,10,20", 'inner.path="a b"', "inner.lens={title=5, brand=2}"])
    assert cfg.ks == (1, 10, 20)
    assert cfg.inner.lens == {"title": 5, "brand": 2}
    assert from_dict(Outer, tomllib.loads(dumps_toml(cfg))) == cfg


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("inner.dd=1", "did you mean 'd'"),
        ("inner.kind=c", "not one of"),
        ("inner.d=x", "expected an integer"),
        ("inner.d=1.5", "expected an integer"),
        ("lr=abc", "expected a number"),
        ("noequals", "key=value"),
    ],
)
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load(Outer, overrides=[override])


def test_missing_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load(Outer, toml=tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 1\n")
    with pytest.raises(UserError, match="invalid TOML"):
        load(Outer, toml=bad)
