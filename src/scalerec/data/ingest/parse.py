"""Streaming line parsing with strict/lenient error handling, shared by every source reader.

Raw dumps are tens of GB, gzipped, and dirty (truncated archives, broken JSON, ragged rows, stray
latin-1 bytes). Readers here never hold a whole file: they read ~32 MB blocks cut at line ends,
parse each block with vectorized Polars expressions, and record every rejected line in a
`ParseLog` — in strict mode the first one stops the run with file, line number and reason; in
lenient mode it is counted per reason (with up to 20 examples for the dataset card) and the rest
of the data goes on.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalerec.errors import UserError

CHUNK_BYTES = 32 << 20
MAX_EXAMPLES = 20
NUL_MARK = "\u2400"
"""Stands in for a NUL byte inside a line (SYMBOL FOR NULL), so the line can be split and rejected
as `nul_byte` instead of breaking the block reader; binary and UTF-16 files are full of NULs."""


@dataclass
class ParseLog:
    """Rejected lines per reason (lenient) or the first one as a `UserError` (strict)."""

    mode: str = "lenient"
    counts: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)
    by_file: dict[str, dict[str, int]] = field(default_factory=dict)
    """Bad lines per file and reason (what `check_readable` judges a file by)."""

    def bad(self, path: Path | str, line: int, reason: str, text: str = "", n: int = 1) -> None:
        """Record `n` bad lines of one reason; `line` is the 1-based number of the first."""
        shown = text[:120].replace(NUL_MARK, "\\x00")
        if self.mode == "strict":
            raise UserError(f"{path}, line {line}: {reason.replace('_', ' ')}: {shown!r}")
        self.counts[reason] = self.counts.get(reason, 0) + n
        per_file = self.by_file.setdefault(str(path), {})
        per_file[reason] = per_file.get(reason, 0) + n
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"file": str(path), "line": line, "reason": reason, "text": shown})

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class _Truncated(Exception):
    """The compressed stream ended (or broke) before its end-of-stream marker."""


def _raw_chunks(path: Path, size: int) -> Iterator[bytes]:
    """Decompressed bytes of `path` (gzip detected by magic, multi-member aware), in pieces.

    Decompressing with `zlib` directly keeps every byte produced before damage, where
    `gzip.GzipFile.read` would discard its whole buffer on a truncated stream.
    """
    with open(path, "rb") as fh:
        head = fh.read(2)
        fh.seek(0)
        if head != b"\x1f\x8b":
            while piece := fh.read(size):
                yield piece
            return
        dec = zlib.decompressobj(wbits=31)
        while True:
            comp = fh.read(1 << 20)
            if not comp:
                if not dec.eof:
                    raise _Truncated("compressed stream ends early")
                return
            while comp:
                try:
                    out = dec.decompress(comp)
                except zlib.error as exc:
                    raise _Truncated(str(exc)) from None
                if out:
                    yield out
                comp = b""
                if dec.eof and dec.unused_data:
                    comp, dec = dec.unused_data, zlib.decompressobj(wbits=31)


def iter_blocks(path: Path, log: ParseLog, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """Yield `(first_line_number, block)` with blocks of ~`chunk_bytes` cut at newlines.

    A truncated gzip stream keeps every complete line before the damage and records the rest
    as one `truncated_gzip` line. An empty file is recorded as `empty_file`.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file not found: {path}")
    line_no, pending, size, seen = 1, [], 0, False
    try:
        for piece in _raw_chunks(path, chunk_bytes):
            seen = True
            pending.append(piece)
            size += len(piece)
            if size < chunk_bytes:
                continue
            block = b"".join(pending)
            cut = block.rfind(b"\n")
            if cut < 0:
                pending, size = [block], len(block)
                continue
            yield line_no, block[:cut]
            line_no += block.count(b"\n", 0, cut) + 1
            pending, size = [block[cut + 1 :]], len(block) - cut - 1
    except _Truncated as exc:
        block = b"".join(pending)
        cut = block.rfind(b"\n")
        if cut >= 0:
            yield line_no, block[:cut]
            line_no += block.count(b"\n", 0, cut) + 1
        log.lines[str(path)] = line_no - 1
        log.bad(path, line_no, "truncated_gzip", f"{exc}; the partial last line is dropped")
        return
    block = b"".join(pending)
    if block:
        yield line_no, block[:-1] if block.endswith(b"\n") else block
        line_no += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    log.lines[str(path)] = line_no - 1
    if not seen:
        log.bad(path, 1, "empty_file", "")


def lines_frame(block: bytes, first_line: int, encoding: str = "utf-8") -> Any:
    """One block → DataFrame `line:str, line_no:int64` (blank lines are null; bad bytes → U+FFFD)."""
    import polars as pl

    if encoding != "utf-8":
        block = block.decode(encoding, errors="replace").encode("utf-8")
    if b"\x00" in block:
        block = block.replace(b"\x00", NUL_MARK.encode())
    df = pl.read_csv(
        io.BytesIO(block + b"\n"),
        has_header=False,
        separator="\x00",
        quote_char=None,
        new_columns=["line"],
        schema={"line": pl.String},
        encoding="utf8-lossy",
    )
    return df.with_row_index("line_no", offset=first_line).with_columns(pl.col("line_no").cast(pl.Int64))


def reject(df: Any, bad_mask: Any, reason: str, path: Path, log: ParseLog) -> Any:
    """Record rows of `df` where the boolean expression `bad_mask` holds; return the others."""
    import polars as pl

    flagged = df.with_columns(bad_mask.fill_null(True).alias("_bad"))
    bad = flagged.filter(pl.col("_bad"))
    if len(bad):
        first = bad.row(0, named=True)
        log.bad(path, int(first["line_no"]), reason, first.get("line") or "", n=len(bad))
        if log.mode == "lenient":
            for row in bad.head(3).slice(1).iter_rows(named=True):
                if len(log.examples) < MAX_EXAMPLES:
                    log.examples.append(
                        {
                            "file": str(path),
                            "line": int(row["line_no"]),
                            "reason": reason,
                            "text": (row.get("line") or "")[:120],
                        }
                    )
    return flagged.filter(~pl.col("_bad")).drop("_bad")


def reject_binary(df: Any, path: Path, log: ParseLog) -> Any:
    """Reject lines holding NUL bytes (`nul_byte`) or bytes that are not UTF-8 (`non_utf8`)."""
    import polars as pl

    df = reject(df, pl.col("line").str.contains(NUL_MARK, literal=True), "nul_byte", path, log)
    return reject(df, pl.col("line").str.contains("\ufffd", literal=True), "non_utf8", path, log)


def parse_timestamp(col: Any) -> Any:
    """String column → Int64 seconds (accepts `881250949` and `881250949.0`); null if invalid."""
    import polars as pl

    as_float = col.cast(pl.Float64, strict=False)
    value = pl.coalesce(col.cast(pl.Int64, strict=False), as_float.cast(pl.Int64, strict=False))
    return pl.when(value >= 0).then(value)


def split_delimited(
    df: Any, sep: str, names: list[str], path: Path, log: ParseLog, min_fields: int | None = None
) -> Any:
    """Split `line` on `sep` into `names` (strings); reject blank/non-UTF-8/wrong-count lines.

    With `min_fields` set, lines may carry extra trailing fields (they are ignored).
    """
    import polars as pl

    n = len(names)
    df = reject(
        df, pl.col("line").is_null() | (pl.col("line").str.strip_chars() == ""), "empty_line", path, log
    )
    df = reject_binary(df, path, log)
    parts = pl.col("line").str.split_exact(sep, n)
    df = df.with_columns(parts.alias("_p")).unnest("_p")
    fields = [f"field_{i}" for i in range(n + 1)]
    need = min_fields or n
    wrong = pl.col(fields[need - 1]).is_null()
    if min_fields is None:
        wrong = wrong | pl.col(fields[n]).is_not_null()
    df = reject(df, wrong, "wrong_column_count", path, log)
    return df.rename(dict(zip(fields[:n], names, strict=True))).drop(fields[n])
