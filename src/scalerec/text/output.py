"""Where `text train` may write: never over what it did not create, never into its own inputs.

A token table dir is recognised as a previous output of this stage by its manifest
(`token_table.json`, the stage's marker) and by holding nothing but the files the stage writes;
only such a dir is replaced, and only once the new table is complete (`io.atomic_dir`). One lock
file next to the output keeps two writers from replacing each other's work.
These are small local versions of generic helpers (marker check, lock) the data stage is adding
to `scalerec.io`; they should move there once that lands.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from scalerec.errors import UserError
from scalerec.io import write_lock

MARKER = "token_table.json"
WRITTEN = frozenset({"tokenizer.json", "item_tokens.npz", MARKER})
"""Every file a token table dir holds; anything else in `--out` is the user's."""


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output(out: Path, inputs: dict[str, Path | None]) -> None:
    """Raise UserError unless `out` is absent, empty, or a previous token table of this stage, and
    unless it is disjoint from every input (`{"--data": dir, ...}`; replacing it would delete them)."""
    target = out.resolve()
    for flag, path in inputs.items():
        if path is None:
            continue
        src = path.resolve()
        if _inside(target, src) or _inside(src, target):
            raise UserError(f"--out {out} overlaps the input {flag} {path}; write the token table elsewhere")
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder; pick a new path or remove it yourself")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    foreign = [name for name in entries if name not in WRITTEN]
    if MARKER not in entries or foreign or not _is_manifest(out / MARKER):
        shown = ", ".join((foreign or entries)[:5])
        raise UserError(
            f"--out {out} is not empty and is not a token table written by `scalerec text train` "
            f"(it holds {shown}); pick a new path — nothing was changed"
        )


def _is_manifest(path: Path) -> bool:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "format_version" in meta and "fields" in meta


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold `.NAME.lock` beside `out` while writing it (`scalerec.io.write_lock`): a second live
    writer gets a UserError, a killed writer's lock is taken over."""
    with write_lock(out):
        yield
