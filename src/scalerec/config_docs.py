"""Every config key with its type, default, declared range and docstring, read from the dataclasses.

The docstring of a field is the string literal under it (the convention of every config class
here, after litgpt's `args.py`); Python keeps no such attribute docstrings at run time, so they are
parsed from the class source. One source of truth: `scalerec config show` prints these rows and
a docs page can be generated from them, so neither can drift from the code.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class ConfigRow:
    """One config key: `key` dotted as `--set` takes it (`train.lr`)."""

    key: str
    type: str
    default: Any
    range: str
    doc: str


def field_docs(cls: type) -> dict[str, str]:
    """{field name: the string literal right under its annotation} for a dataclass `cls`."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # defined somewhere without source (e.g. an interactive session)
        return {}
    node = ast.parse(source).body[0]
    docs: dict[str, str] = {}
    if not isinstance(node, ast.ClassDef):
        return docs
    body = node.body
    for stmt, after in zip(body, body[1:], strict=False):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


def type_name(tp: Any) -> str:
    """A short, readable type: `int | None`, `"all" | "last"`, `list[float]`, `dict[str, int]`."""
    origin = get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(tp))
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else type_name(a) for a in get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def config_rows(obj: Any, prefix: str = "") -> list[ConfigRow]:
    """Rows of dataclass instance `obj` and of its nested dataclasses, in declaration order; the
    default column holds `obj`'s values (so a preset's numbers show when `obj` was resolved from one)."""
    cls = type(obj)
    hints, docs = get_type_hints(cls), field_docs(cls)
    rows: list[ConfigRow] = []
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            rows += config_rows(value, key)
            continue
        rows.append(ConfigRow(key, type_name(hints[f.name]), _plain(value), f.metadata.get("range", ""),
                              docs.get(f.name, "")))
    return rows
