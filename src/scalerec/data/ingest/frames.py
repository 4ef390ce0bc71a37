"""The one normalized shape every raw reader produces, and the delimited-text reader they share.

Interaction blocks: `user_key:str, item_key:str, rating:f32?, timestamp:i64?` (null timestamp =
"use the position in the file"). Item frames: `join_key:str, item_key:str, title:str?,
brand:str?, categories:list[str]`. Kept apart from the per-format readers so the Amazon,
MovieLens, benchmark and CSV readers all depend on this module and never on each other.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from scalerec.data.ingest.parse import (
    ParseLog,
    iter_blocks,
    lines_frame,
    parse_timestamp,
    reject,
    split_delimited,
)

if TYPE_CHECKING:
    from polars import DataFrame

INTER_COLUMNS = ("user_key", "item_key", "rating", "timestamp")


def finish_block(df: DataFrame, path: Path, log: ParseLog, ts_scale: int = 1) -> DataFrame:
    """Typed interaction block from string columns user_key/item_key/rating/timestamp."""
    df = reject(
        df,
        (pl.col("user_key").str.strip_chars() == "") | (pl.col("item_key").str.strip_chars() == ""),
        "empty_id",
        path,
        log,
    )
    if "rating" in df.columns:
        df = df.with_columns(pl.col("rating").cast(pl.Float32, strict=False).alias("_r"))
        df = reject(df, pl.col("rating").is_not_null() & pl.col("_r").is_null(), "bad_rating", path, log)
        df = df.with_columns(pl.col("_r").alias("rating"))
    else:
        df = df.with_columns(pl.lit(None, pl.Float32).alias("rating"))
    if "timestamp" in df.columns:
        df = df.with_columns(parse_timestamp(pl.col("timestamp").cast(pl.String)).alias("_t"))
        df = reject(df, pl.col("_t").is_null(), "bad_timestamp", path, log)
        df = df.with_columns((pl.col("_t") // ts_scale).alias("timestamp"))
    else:
        df = df.with_columns(pl.lit(None, pl.Int64).alias("timestamp"))
    return df.select(
        pl.col("user_key").str.strip_chars(), pl.col("item_key").str.strip_chars(), "rating", "timestamp"
    )


def fast_block(block: bytes, sep: str, names: list[str]) -> DataFrame | None:
    """Typed parse of a clean block in one native pass; None if anything at all looks off
    (the caller then re-parses the block line by line to name each bad line)."""
    if b"\x00" in block:
        return None
    types = {"user_key": pl.String, "item_key": pl.String, "rating": pl.Float32, "timestamp": pl.Int64}
    try:
        df = pl.read_csv(
            io.BytesIO(block),
            has_header=False,
            separator=sep,
            quote_char=None,
            new_columns=names,
            schema={n: types[n] for n in names},
        )
    except Exception:  # noqa: BLE001 - any failure means "take the careful path"
        return None
    ok = (
        len(df) == block.count(b"\n") + 1
        and df.null_count().sum_horizontal().item() == 0
        and df.select(
            (pl.col("timestamp") >= 0).all().alias("a"),
            (pl.col("user_key").str.len_bytes() > 0).all().alias("b"),
            (pl.col("item_key").str.len_bytes() > 0).all().alias("c"),
            (pl.col("user_key").str.strip_chars() == pl.col("user_key")).all().alias("d"),
            (pl.col("item_key").str.strip_chars() == pl.col("item_key")).all().alias("e"),
        ).row(0)
        == (True,) * 5
    )
    return df.select(list(INTER_COLUMNS)) if ok else None


def read_delimited(
    path: Path, log: ParseLog, sep: str, names: list[str], header: bool = False, encoding: str = "utf-8"
) -> Iterator[DataFrame]:
    for first, block in iter_blocks(path, log):
        if len(sep) == 1 and encoding == "utf-8" and not (header and first == 1) and block:
            fast = fast_block(block, sep, names)
            if fast is not None:
                yield fast
                continue
        df = lines_frame(block, first, encoding)
        if header and first == 1:
            df = df.slice(1)
        yield finish_block(split_delimited(df, sep, names, path, log), path, log)


def normalized_items(rows: dict[str, Any]) -> DataFrame:
    """Item rows (categories as JSON-list strings) → the normalized item frame; `item_key`
    defaults to the join key when the source has no separate public key."""
    rows = {"item_key": rows["join_key"], **rows}
    df = pl.DataFrame(
        rows,
        schema={
            "join_key": pl.String,
            "item_key": pl.String,
            "title": pl.String,
            "brand": pl.String,
            "categories": pl.String,
        },
    )
    df = df.with_columns(pl.col("categories").str.json_decode(pl.List(pl.String)))
    return df.select("join_key", "item_key", "title", "brand", "categories")


def empty_items() -> DataFrame:
    return normalized_items({"join_key": [], "title": [], "brand": [], "categories": []}).with_columns(
        pl.col("categories").cast(pl.List(pl.String))
    )


def parse_json_list(text: str | None) -> list[str]:
    """A JSON list of strings stored in a TSV cell (S3Rec item tables); [] when absent."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return [text]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
