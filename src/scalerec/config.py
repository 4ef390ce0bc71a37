"""One config precedence for every stage: defaults < preset < TOML file < `--set a.b=value` < flags.

Stage configs are plain dataclasses (possibly nested). `resolve` builds one from a preset, a
TOML file, command-line overrides and flags (its docstring states the precedence), converting
values to the annotated types, checking `Literal` choices and declared ranges, and failing on
unknown keys with a close-match suggestion — the failure mode RecBole users know as
"my yaml was ignored" cannot happen here.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from scalerec.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

T = TypeVar("T")


def _suggest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(options))})"


def _parse_scalar(text: str) -> Any:
    """Interpret a `--set` value the way TOML would, falling back to a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise UserError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and len(args) < len(get_args(tp)):
            return None
        errors = []
        for arg in args:
            try:
                return _convert(value, arg, where)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[0])
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a table, got {value!r}")
        return from_dict(tp, value, prefix=where)
    if origin in (list, tuple):
        values = [v for v in value.split(",") if v != ""] if isinstance(value, str) else value
        if not isinstance(values, list | tuple):
            raise UserError(f"{where}: expected a list, got {value!r}")
        item_types = get_args(tp)
        inner = item_types[0] if item_types else Any
        items = [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(values)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a table, got {value!r}")
        kt, vt = get_args(tp) or (Any, Any)
        return {_convert(k, kt, where): _convert(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise UserError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise UserError(f"{where}: expected an integer, got {value!r}")
        try:
            f = float(value)
        except ValueError:
            raise UserError(f"{where}: expected an integer, got {value!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise UserError(f"{where}: expected an integer, got {value!r}")
        return int(f)
    if tp is float:
        if isinstance(value, bool):
            raise UserError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserError(f"{where}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise UserError(f"{where}: expected a finite number, got {value!r}")
        return number
    if tp is str:
        if not isinstance(value, (str, int, float)):
            raise UserError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if tp is Path:
        return Path(value)
    return value


_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^\]\)\s]+)\s*([\])])\s*$")


def interval(text: str) -> tuple[float, float, bool, bool]:
    """`"[0, 1)"` → (low, high, low included, high included); `inf`/`-inf` for open ends.

    Fields declare their range as `field(default=..., metadata={"range": "[1, inf)"})`: plain
    data, so the layers that import nothing of the project (data, text, model) can declare one.
    """
    m = _INTERVAL.match(text)
    if not m:
        raise ValueError(f"bad range {text!r}; write it like '[0, 1)' or '(0, inf)'")
    return float(m[2]), float(m[3]), m[1] == "[", m[4] == "]"


def _bound_text(text: str) -> str:
    low, high, low_in, high_in = interval(text)
    if math.isinf(high):
        return f"{'>=' if low_in else '>'} {low:g}"
    if math.isinf(low):
        return f"{'<=' if high_in else '<'} {high:g}"
    return f"in {text.strip()}"


def check_range(value: Any, text: str, where: str) -> None:
    """Raise `UserError("train.lr must be > 0, got -1.0")` unless every number in `value` (a number,
    or a list / dict of numbers; None passes: "unset") lies in the interval `text`."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            check_range(item, text, f"{where}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_range(item, text, f"{where}[{i}]")
        return
    low, high, low_in, high_in = interval(text)
    number = float(value)
    ok = math.isfinite(number) and (low <= number if low_in else low < number)
    ok = ok and (number <= high if high_in else number < high)
    if not ok:
        raise UserError(f"{where} must be {_bound_text(text)}, got {value!r}")


def check_ranges(obj: Any, prefix: str = "") -> None:
    """Check every declared `range` of dataclass `obj` (and of nested dataclasses) — for configs
    built in Python, which do not pass through `from_dict`; `__post_init__` may call it."""
    for f in dataclasses.fields(obj):
        where = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_ranges(value, where)
        elif "range" in f.metadata:
            check_range(value, f.metadata["range"], where)


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass `cls` from a (nested) dict, validating keys, types and declared ranges.

    Every number must be finite; a field with `metadata={"range": "[1, inf)"}` must lie in it.
    Both are checked before `cls.__post_init__` runs, so the error names the key (`train.lr`)
    instead of failing later inside the stage; `__post_init__` keeps the checks that relate
    fields to each other.
    """
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            raise UserError(f"unknown config key '{where}'" + _suggest(key, list(fields)))
        kwargs[key] = _convert(value, hints[key], where)
        if "range" in fields[key].metadata:
            check_range(kwargs[key], fields[key].metadata["range"], where)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise UserError(f"{prefix or cls.__name__}: {exc}") from None
    except ValueError as exc:
        raise UserError(f"{prefix or cls.__name__}: {exc}") from None


def to_dict(obj: Any) -> Any:
    """Dataclass → plain dict of TOML/JSON-friendly values (Paths as strings, tuples as lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {dotted}: '{part}' is not a table")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: list[str] | None) -> dict[str, Any]:
    """`["train.lr=3e-4", "model.d_model=64"]` → nested dict."""
    tree: dict[str, Any] = {}
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        _set_path(tree, key.strip(), _parse_scalar(raw.strip()))
    return tree


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from None


def _flag_value(value: Any) -> Any:
    """A typed CLI flag value as a config value (Paths as strings, tuples as lists)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_flag_value(v) for v in value]
    return value


def flags_tree(flags: Mapping[str, Any] | None) -> dict[str, Any]:
    """`{"train.lr": 3e-4, "run.out": Path("runs"), "data.tokens": None}` → nested dict.

    A flag the user did not give is None (or, for a repeatable option, an empty list) and is
    skipped, so it cannot mask a value from a lower layer. Values are typed already and are not
    re-parsed as TOML (a path such as `runs/2024-01-01` stays a string).
    """
    tree: dict[str, Any] = {}
    for key, value in (flags or {}).items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        _set_path(tree, key, _flag_value(value))
    return tree


Preset = Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]]


def user_layers(
    toml: str | Path | None = None,
    overrides: list[str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The layers a user typed, merged: TOML file < `--set` < flags (see `resolve`)."""
    data = read_toml(toml) if toml is not None else {}
    data = merge(data, parse_overrides(overrides))
    return merge(data, flags_tree(flags))


def resolve(
    cls: type[T],
    *,
    preset: Preset | None = None,
    toml: str | Path | None = None,
    overrides: list[str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> T:
    """Resolve a config with the one precedence every command uses, lowest first:

    1. the dataclass defaults of `cls`;
    2. `preset`: a size-ladder entry, a recipe, or a dict a program or sweep builds (a callable
       preset receives the merged user layers below, so `--size` or a TOML `model_size` can pick it);
    3. the TOML file (`--config`, a sweep spec, a run dir's config.toml);
    4. `--set a.b=value` overrides, in the order given (values parsed as TOML, else strings);
    5. explicit CLI flags (`--data`, `--out`, `--strategy`, `--vocab-size`, ...), as a mapping of
       dotted keys to typed values; None means "not given" and is skipped.

    Flags win over `--set` because a flag is the narrowest statement a user makes about one key,
    and every command documents its flags by name; `--set` is the generic route to the keys
    without one. Each layer replaces only the keys it sets (tables merge key by key). Unknown
    keys fail with a suggestion, values are converted to the annotated types, `Literal` choices
    and declared numeric ranges are checked (see `from_dict`).
    """
    user = user_layers(toml, overrides, flags)
    base = preset(user) if callable(preset) else preset
    return from_dict(cls, merge(dict(base or {}), user))


def load(
    cls: type[T],
    toml: str | Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> T:
    """`resolve` without flags (`base` is its preset): kept for library callers and tests."""
    return resolve(cls, preset=base, toml=toml, overrides=overrides)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(x)}' for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} as TOML")


def dumps_toml(obj: Any, prefix: str = "") -> str:
    """Write a nested config dataclass as TOML (nested dataclasses become sections), so the
    resolved config saved in a run dir can be loaded back with `load`."""
    lines: list[str] = []
    nested: list[tuple[str, Any]] = []
    scalars: list[tuple[str, Any]] = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        (nested if dataclasses.is_dataclass(v) else scalars).append((f.name, v))
    if prefix and scalars:
        lines.append(f"[{prefix}]")
    lines += [f"{k} = {_toml_value(v)}" for k, v in scalars if v is not None]
    if scalars:
        lines.append("")
    for k, v in nested:
        lines.append(dumps_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(lines)


def check_out_dir(path: str | Path, flag: str = "--out") -> None:
    """Refuse an output dir that a stage replacing its output would destroy the user's work with:
    the current directory, one of its parents, the home directory or the filesystem root
    (`--out .`, `--out ..`). A named subfolder is the only safe target of an atomic replace."""
    target = Path(path).expanduser().resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents or target == Path.home().resolve() or target == target.parent:
        raise UserError(f"{flag} {path}: refusing to write into the current directory, one of its "
                        f"parents, the home directory or the root; name a new folder, e.g. {flag} out/data")
