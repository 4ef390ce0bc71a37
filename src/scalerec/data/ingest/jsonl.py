"""JSON-lines (and Python-dict-literal lines) reading, block by block, with per-line reasons.

Amazon ships reviews and metadata as one object per line; the 2014 metadata is not JSON but
Python `repr` of a dict (single quotes), which only `ast.literal_eval` reads correctly. A block is
first parsed by Polars' native NDJSON reader (fast path); if anything in it is off (bad syntax,
unexpected types, bad bytes), that block is re-read line by line so a broken line costs one line,
with its number and reason, never the file.
"""

from __future__ import annotations

import ast
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scalerec.data.ingest.parse import CHUNK_BYTES, ParseLog, iter_blocks


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
        if "\x00" in line:
            log.bad(path, first + i, "nul_byte", line)
            line = ""
        yield first + i, line


def flatten_strings(value: Any) -> list[str]:
    """Lists of strings, possibly nested (2014 `categories` is a list of lists) → flat, deduped."""
    out: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop(0)
        if isinstance(v, list):
            stack[:0] = v
        elif isinstance(v, str) and v and v not in out:
            out.append(v)
    return out


def _as_text(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v)


def _slow_block(
    block: bytes, first: int, path: Path, log: ParseLog, schema: dict[str, Any], literal: bool
) -> Any:
    import polars as pl

    loads = ast.literal_eval if literal else json.loads
    cols: dict[str, list[Any]] = {f: [] for f in schema}
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
        for f, dtype in schema.items():
            v = rec.get(f)
            cols[f].append(json.dumps(flatten_strings(v)) if dtype == pl.List(pl.String) else _as_text(v))
        nums.append(no)
    df = pl.DataFrame(
        {**cols, "line_no": nums}, schema={**{f: pl.String for f in schema}, "line_no": pl.Int64}
    )
    lists = [f for f, t in schema.items() if t == pl.List(pl.String)]
    return df.with_columns([pl.col(f).str.json_decode(pl.List(pl.String)) for f in lists])


def _sub_blocks(first: int, block: bytes, size: int) -> Iterator[tuple[int, bytes]]:
    """Cut one block of lines into pieces of about `size` bytes at line ends, each with the number of
    its first line (a gzip member can decompress to far more than `iter_blocks` asked for)."""
    start = 0
    while len(block) - start > size:
        cut = block.find(b"\n", start + size)
        if cut < 0:
            break
        yield first, block[start:cut]
        first += block.count(b"\n", start, cut) + 1
        start = cut + 1
    if start < len(block) or start == 0:
        yield first, block[start:]


def iter_json_records(
    path: Path, log: ParseLog, schema: dict[str, Any], literal: bool = False, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Any]:
    """Yield blocks of ~`chunk_bytes` of records as Polars frames: the columns of `schema` plus
    `line_no` (the 1-based line in the file, counted across blocks).

    `schema` maps field → `pl.String` (numbers arrive as their text, e.g. `"5.0"`) or
    `pl.List(pl.String)` (nested lists are flattened in the line-by-line path).
    """
    import polars as pl

    for first, block in (
        sub for big in iter_blocks(path, log, chunk_bytes) for sub in _sub_blocks(*big, chunk_bytes)
    ):
        if not literal and b"\n\n" not in block and not block.startswith(b"\n") and b"\x00" not in block:
            try:
                df = pl.read_ndjson(io.BytesIO(block), schema=schema).select(list(schema))
                yield df.with_row_index("line_no", offset=first).with_columns(
                    pl.col("line_no").cast(pl.Int64)
                )
                continue
            except Exception:  # noqa: BLE001 - any failure: redo the block line by line
                pass
        yield _slow_block(block, first, path, log, schema, literal)
