"""The user's own interactions and items: CSV/TSV or Parquet tables with a column mapping.

`scalerec data prepare --source csv` reads any table with a header; `columns` maps our names
(`user`, `item`, `timestamp`, optional `rating`; for the item table `item`, `title`, `brand`,
`categories`) to the table's. Unmapped names default to `user_id`, `item_id`, `timestamp`,
`rating`, `title`, `brand`, `categories`; optional ones are used when present. Timestamps may be
unix seconds (int or float) or date/time strings that Polars can parse (`2021-03-04`,
`2021-03-04T10:00:00`); categories a list column (Parquet) or a `|`-separated string. A table is
read whole (a CSV of a few million rows is well under a GiB of RAM); its rows then go through the
same checks as every other source (empty ids, bad ratings, bad timestamps are counted per reason).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from scalerec.data.ingest.frames import finish_block, parse_json_list
from scalerec.data.ingest.parse import ParseLog
from scalerec.errors import UserError

if TYPE_CHECKING:
    from polars import DataFrame

DEFAULT_COLUMNS = {
    "user": "user_id",
    "item": "item_id",
    "timestamp": "timestamp",
    "rating": "rating",
    "title": "title",
    "brand": "brand",
    "categories": "categories",
}
"""Our name → the table's column when `columns` does not say otherwise."""
KNOWN = frozenset(DEFAULT_COLUMNS)
BLOCK_ROWS = 1 << 20
CATEGORY_SEP = "|"


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _read(path: Path, wanted: list[str]) -> DataFrame:
    """The named columns of a CSV/TSV/Parquet table; CSV cells are read as text."""
    try:
        if _is_parquet(path):
            return pl.read_parquet(path, columns=wanted)
        sep = "\t" if ".tsv" in path.name.lower() else ","
        return pl.read_csv(
            path, columns=wanted, separator=sep, infer_schema=False, encoding="utf8-lossy", quote_char='"'
        )
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable CSV/Parquet table with a header row ({first})") from None


def _header(path: Path) -> list[str]:
    try:
        if _is_parquet(path):
            return pl.scan_parquet(path).collect_schema().names()
        sep = "\t" if ".tsv" in path.name.lower() else ","
        return pl.read_csv(path, n_rows=0, separator=sep, infer_schema=False, encoding="utf8-lossy").columns
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable CSV/Parquet table with a header row ({exc})") from None


def resolve_columns(
    path: Path, columns: Mapping[str, str], required: list[str], optional: list[str]
) -> dict[str, str]:
    """Our name → the table's column for `required` (error if absent) and `optional` (if present)."""
    unknown = set(columns) - KNOWN
    if unknown:
        raise UserError(f"columns: unknown key(s) {sorted(unknown)}; known: {sorted(KNOWN)}")
    header = _header(path)
    out: dict[str, str] = {}
    for ours in required + optional:
        theirs = columns.get(ours, DEFAULT_COLUMNS[ours])
        if theirs in header:
            out[ours] = theirs
        elif ours in required or ours in columns:
            raise UserError(
                f"{path}: no column {theirs!r} for {ours} (columns: {', '.join(header[:20])}); "
                f"map it with --columns {ours}=NAME"
            )
    return out


def _timestamp_text(col: pl.Expr) -> pl.Expr:
    """Unix seconds as text from numbers or date/time strings (null when neither parses)."""
    text = col.cast(pl.String)
    seconds = text.cast(pl.Float64, strict=False).cast(pl.Int64, strict=False)
    parsed = text.str.to_datetime(strict=False, time_unit="us").dt.epoch("s")
    return pl.coalesce(seconds, parsed).cast(pl.String)


def read_table_interactions(path: Path, log: ParseLog, columns: Mapping[str, str]) -> Iterator[DataFrame]:
    """Interaction blocks (`scalerec.data.ingest.frames`) from the user's table."""
    cols = resolve_columns(path, columns, ["user", "item", "timestamp"], ["rating"])
    df = _read(path, list(cols.values()))
    log.lines[str(path)] = len(df) + (0 if _is_parquet(path) else 1)
    if not len(df):
        log.bad(path, 1, "empty_file", "")
        return
    ours = {"user": "user_key", "item": "item_key", "timestamp": "timestamp", "rating": "rating"}
    first_line = 1 if _is_parquet(path) else 2  # line 1 of a CSV is its header
    for start in range(0, len(df), BLOCK_ROWS):
        block = df.slice(start, BLOCK_ROWS).select(
            [pl.col(theirs).cast(pl.String).alias(ours[name]) for name, theirs in cols.items()]
        )
        block = block.with_columns(
            _timestamp_text(pl.col("timestamp")).alias("timestamp"),
            pl.concat_str(list(block.columns), separator=",", ignore_nulls=True).alias("line"),
            pl.int_range(start + first_line, start + first_line + len(block), dtype=pl.Int64).alias(
                "line_no"
            ),
        )
        yield finish_block(block, path, log)


def _categories(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.List):
        return col.cast(pl.List(pl.String))
    text = col.cast(pl.String).fill_null("")
    as_json = text.map_elements(parse_json_list, return_dtype=pl.List(pl.String))
    split = text.str.split(CATEGORY_SEP).list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
    return pl.when(text.str.starts_with("[")).then(as_json).otherwise(split)


def read_table_items(
    path: Path, log: ParseLog, chunk_bytes: int, columns: Mapping[str, str]
) -> Iterator[DataFrame]:
    """One normalized item frame from the user's item table (item id + any text columns)."""
    cols = resolve_columns(path, columns, ["item"], ["title", "brand", "categories"])
    df = _read(path, list(cols.values()))
    log.lines[str(path)] = len(df) + (0 if _is_parquet(path) else 1)
    key = pl.col(cols["item"]).cast(pl.String).str.strip_chars()
    text = {
        name: pl.col(cols[name]).cast(pl.String) if name in cols else pl.lit(None, pl.String)
        for name in ("title", "brand")
    }
    cats = (
        _categories(pl.col(cols["categories"]), df.schema[cols["categories"]])
        if "categories" in cols
        else pl.lit([], pl.List(pl.String))
    )
    out = df.select(
        key.alias("join_key"),
        key.alias("item_key"),
        text["title"].alias("title"),
        text["brand"].alias("brand"),
        cats.alias("categories"),
    )
    missing = out.filter(pl.col("join_key").is_null() | (pl.col("join_key") == ""))
    if len(missing):
        log.bad(path, 0, "missing_item_id", "", n=len(missing))
    yield out.filter(pl.col("join_key").is_not_null() & (pl.col("join_key") != ""))
