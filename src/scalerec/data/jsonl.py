"""JSON-lines (and Python-dict-literal lines) reading, block by block, with per-line reasons.

Amazon ships reviews and metadata as one object per line; the 2014 metadata is not JSON but
Python `repr` of a dict (single quotes), which only `ast.literal_eval` reads correctly. Each line
is parsed on its own so a broken line costs one line, with its number, never the file.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scalerec.data.parse import ParseLog, iter_blocks


def _decode_lines(block: bytes, first: int, path: Path, log: ParseLog) -> Iterator[tuple[int, str]]:
    try:
        text_lines = block.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        text_lines = []
        for i, raw in enumerate(block.split(b"\n")):
            try:
                text_lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                log.bad(path, first + i, "non_utf8", raw.decode("utf-8", errors="replace"))
                text_lines.append("")
    for i, line in enumerate(text_lines):
        yield first + i, line


def iter_json_records(
    path: Path, log: ParseLog, fields: list[str], literal: bool = False, keep_objects: bool = False
) -> Iterator[Any]:
    """Yield blocks of records as Polars frames with one column per field (+ `line_no`).

    Values are stringified (numbers → `"5.0"`) unless `keep_objects`, in which case the frame
    holds Python objects (lists, nested dicts) for the caller to normalize.
    """
    import polars as pl

    loads = ast.literal_eval if literal else json.loads
    for first, block in iter_blocks(path, log):
        cols: dict[str, list[Any]] = {f: [] for f in fields}
        nums: list[int] = []
        for no, line in _decode_lines(block, first, path, log):
            if not line.strip():
                continue
            try:
                rec = loads(line)
            except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                log.bad(path, no, "invalid_python_literal" if literal else "invalid_json", line)
                continue
            if not isinstance(rec, dict):
                log.bad(path, no, "not_an_object", line)
                continue
            for f in fields:
                v = rec.get(f)
                cols[f].append(v if keep_objects or v is None or isinstance(v, str) else json.dumps(v))
            nums.append(no)
        if keep_objects:
            df = pl.DataFrame({"line_no": nums}).with_columns(
                [pl.Series(f, cols[f], dtype=pl.Object) for f in fields]
            )
        else:
            df = pl.DataFrame(
                {**cols, "line_no": nums}, schema={**{f: pl.String for f in fields}, "line_no": pl.Int64}
            )
        yield df
