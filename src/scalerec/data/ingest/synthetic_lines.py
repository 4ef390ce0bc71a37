"""Line-level helpers of the synthetic writers: chunked atomic line files, corruption, CSV/JSON lines.

Lines are built with Polars string expressions (no per-row Python). A file is written through a
`LineSink` chunk by chunk into a temporary name and renamed when complete; gzip files carry no
timestamp, so the same seed gives the same bytes.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

import numpy as np


class LineSink:
    """Append Polars string Series as lines to `path` (gzip when it ends in .gz); atomic on close."""

    def __init__(self, path: Path, encoding: str = "utf-8") -> None:
        self.path, self.encoding = path, encoding
        self._tmp = path.with_name(f".{path.name}.partial")
        raw = open(self._tmp, "wb")  # noqa: SIM115 (closed in __exit__)
        self._fh: IO[bytes] = (
            cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0, filename=""))
            if path.suffix == ".gz"
            else raw
        )
        self._raw = raw

    def write(self, lines: Any) -> None:
        import io

        import polars as pl

        buf = io.BytesIO()
        pl.DataFrame({"line": lines}).write_csv(buf, include_header=False, quote_style="never")
        data = buf.getvalue()
        if self.encoding != "utf-8":
            data = data.decode("utf-8").encode(self.encoding, errors="replace")
        self._fh.write(data)

    def __enter__(self) -> LineSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fh is not self._raw:
            self._fh.close()
        self._raw.close()
        if kind is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def write_lines(path: Path, lines: Any, encoding: str = "utf-8") -> Path:
    """Write a Polars string Series as lines (gzip when the name ends in .gz)."""
    with LineSink(path, encoding) as sink:
        sink.write(lines)
    return path


def corrupt_counted(
    lines: Any, rate: float, rng: np.random.Generator, kind: str, j0: int = 0
) -> tuple[Any, int]:
    """`corrupt` for one chunk of a file: `j0` broken lines came before it; returns (lines, # broken)."""
    import polars as pl

    n = len(lines)
    idx = np.flatnonzero(rng.random(n) < rate)
    if len(idx) == 0:
        return lines, 0
    values = lines.gather(idx).to_list()
    bad = []
    for j, line in enumerate(values, start=j0):
        if kind == "csv":
            parts = line.split(",")
            variants = [
                ",".join(parts[:2]),
                ",".join(parts[:3] + ["not-a-time"]),
                ",".join(parts[:2] + ["five"] + parts[3:]),
                line + ",extra",
            ]
        else:
            variants = [line[: max(1, len(line) // 2)], line.replace(":", "=", 1), "{" + line]
        bad.append(variants[j % len(variants)])
    return lines.scatter(idx, pl.Series(bad, dtype=pl.String)), len(idx)


def corrupt(lines: Any, rate: float, rng: np.random.Generator, kind: str) -> Any:
    """Replace about `rate` of the lines by broken variants of the given kind (csv/json)."""
    return corrupt_counted(lines, rate, rng, kind)[0]


def csv_lines(df: Any, cols: list[str], sep: str = ",") -> Any:
    import polars as pl

    exprs = [pl.col(c).cast(pl.String) for c in cols]
    return df.select(pl.concat_str(exprs, separator=sep).alias("line")).to_series()


def json_lines(df: Any) -> Any:
    import polars as pl

    return df.select(pl.struct(pl.all()).struct.json_encode().alias("line")).to_series()
