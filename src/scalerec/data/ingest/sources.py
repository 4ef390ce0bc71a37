"""Readers of the raw public formats, each streaming into one normalized shape.

Every reader turns its files into the same two things, so the ETL downstream is format-free:
interaction blocks `user_key:str, item_key:str, rating:f32?, timestamp:i64?` (null timestamp =
"use the position in the file"; `seq` is filled by the ETL) and one item table
`join_key:str, item_key:str, title:str?, brand:str?, categories:list[str]`. Formats: Amazon 2014
(ratings CSV `user,item,rating,time`, 5-core reviews JSON, metadata as Python dict literals),
Amazon 2018 (ratings CSV `item,user,rating,timestamp`, 5-core reviews, metadata JSON lines),
Amazon 2023 (reviews/metadata JSON lines, ms timestamps, `parent_asin`), MovieLens
100k/1m/20m+, RecBole atomic `.inter`/`.item`, and the S3Rec sequence format plus item tables.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scalerec.data.ingest.jsonl import iter_json_records
from scalerec.data.ingest.parse import (
    CHUNK_BYTES,
    ParseLog,
    iter_blocks,
    lines_frame,
    parse_timestamp,
    reject,
    split_delimited,
)
from scalerec.errors import UserError

SOURCES = ("amazon2014", "amazon2018", "amazon2023", "movielens", "recbole", "s3rec")
INTER_COLUMNS = ("user_key", "item_key", "rating", "timestamp")


def _finish(df: Any, path: Path, log: ParseLog, ts_scale: int = 1) -> Any:
    """Typed interaction block from string columns user_key/item_key/rating/timestamp."""
    import polars as pl

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


def _fast_block(block: bytes, sep: str, names: list[str]) -> Any | None:
    """Typed parse of a clean block in one native pass; None if anything at all looks off
    (the caller then re-parses the block line by line to name each bad line)."""
    import polars as pl

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


def _delimited(
    path: Path, log: ParseLog, sep: str, names: list[str], header: bool = False, encoding: str = "utf-8"
) -> Iterator[Any]:
    for first, block in iter_blocks(path, log):
        if len(sep) == 1 and encoding == "utf-8" and not (header and first == 1) and block:
            fast = _fast_block(block, sep, names)
            if fast is not None:
                yield fast
                continue
        df = lines_frame(block, first, encoding)
        if header and first == 1:
            df = df.slice(1)
        yield _finish(split_delimited(df, sep, names, path, log), path, log)


def _json_inter(path: Path, log: ParseLog, keys: dict[str, str], ts_scale: int = 1) -> Iterator[Any]:
    """JSON-lines reviews → interactions; `keys` maps our column → the record's field."""
    import polars as pl

    schema = {src: pl.String for src in keys.values()}
    for recs in iter_json_records(path, log, schema):
        df = recs.select([pl.col(src).alias(dst) for dst, src in keys.items()] + ["line_no"])
        df = df.with_columns(pl.concat_str(list(keys), separator=",", ignore_nulls=True).alias("line"))
        yield _finish(df, path, log, ts_scale)


# 2014 and 2018 review files (`reviews_*_5.json.gz`, `*_5.json.gz`) share these keys.
_REVIEW_FIELDS = {
    "user_key": "reviewerID",
    "item_key": "asin",
    "rating": "overall",
    "timestamp": "unixReviewTime",
}


def read_interactions(source: str, path: Path, log: ParseLog) -> Iterator[Any]:
    """Stream the interaction file of `source` as normalized blocks (see module docstring)."""
    path = Path(path)
    name = path.name.lower()
    is_json = ".json" in name
    if source == "amazon2018":
        if is_json:
            return _json_inter(path, log, _REVIEW_FIELDS)
        return _delimited(path, log, ",", ["item_key", "user_key", "rating", "timestamp"])
    if source == "amazon2014":
        if is_json:
            return _json_inter(path, log, _REVIEW_FIELDS)
        return _delimited(path, log, ",", ["user_key", "item_key", "rating", "timestamp"])
    if source == "amazon2023":
        return _json_inter(
            path,
            log,
            {"user_key": "user_id", "item_key": "parent_asin", "rating": "rating", "timestamp": "timestamp"},
            ts_scale=1000,
        )
    if source == "movielens":
        return _movielens_ratings(path, log)
    if source == "recbole":
        from scalerec.data.ingest.bench import recbole_inter

        return recbole_inter(path, log)
    if source == "s3rec":
        from scalerec.data.ingest.bench import s3rec_sequences

        return s3rec_sequences(path, log)
    raise UserError(f"unknown source '{source}' (known: {', '.join(SOURCES)})")


def _movielens_ratings(path: Path, log: ParseLog) -> Iterator[Any]:
    names = ["user_key", "item_key", "rating", "timestamp"]
    name = path.name.removesuffix(".gz")
    if name.endswith(".dat"):  # ml-1m / ml-10m
        return _delimited(path, log, "::", names, encoding="latin-1")
    if name.endswith(".csv"):  # ml-20m / 25m / 32m
        return _delimited(path, log, ",", names, header=True)
    return _delimited(path, log, "\t", names, encoding="latin-1")  # ml-100k u.data


# ---------------------------------------------------------------------------------------- items


def _items_frame(rows: dict[str, Any]) -> Any:
    """Item rows (categories as JSON-list strings) → the normalized item frame; `item_key`
    defaults to the join key when the source has no separate public key."""
    import polars as pl

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


def _empty_items() -> Any:
    import polars as pl

    return _items_frame({"join_key": [], "title": [], "brand": [], "categories": []}).with_columns(
        pl.col("categories").cast(pl.List(pl.String))
    )


def _amazon_meta(
    path: Path, log: ParseLog, key: str, brand: str, cats: str, literal: bool, chunk_bytes: int
) -> Iterator[Any]:
    """Metadata lines → normalized item rows, one frame per block of ~`chunk_bytes`; rows without an
    item id are dropped and counted once, after the last block (as one `missing_item_id` entry)."""
    import polars as pl

    schema = {key: pl.String, "title": pl.String, brand: pl.String, cats: pl.List(pl.String)}
    missing = 0
    for recs in iter_json_records(path, log, schema, literal=literal, chunk_bytes=chunk_bytes):
        df = recs.select(
            pl.col(key).str.strip_chars().alias("join_key"),
            "title",
            pl.col(brand).alias("brand"),
            pl.col(cats)
            .list.eval(pl.element().filter(pl.element() != ""))
            .list.unique(maintain_order=True)
            .alias("categories"),
        )
        ok = pl.col("join_key").is_not_null() & (pl.col("join_key") != "")
        n = len(df)
        df = df.filter(ok)
        missing += n - len(df)
        yield df.with_columns(pl.col("join_key").alias("item_key")).select(
            "join_key", "item_key", "title", "brand", "categories"
        )
    if missing:
        log.bad(path, 0, "missing_item_id", "", n=missing)


def _movielens_items(path: Path, log: ParseLog) -> Any:
    import polars as pl

    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        df = pl.read_csv(path, schema_overrides={"movieId": pl.String}, encoding="utf8-lossy")
        ids, titles, genres = df["movieId"].to_list(), df["title"].to_list(), df["genres"].to_list()
    else:
        sep = "::" if name.endswith(".dat") else "|"
        ids, titles, genres = [], [], []
        raw = path.read_bytes().decode("latin-1")
        for i, line in enumerate(raw.splitlines(), 1):
            parts = line.split(sep)
            if len(parts) < 3:
                if line.strip():
                    log.bad(path, i, "wrong_column_count", line)
                continue
            ids.append(parts[0])
            titles.append(parts[1])
            if sep == "|":  # u.item: 19 genre flags at the end
                from scalerec.data.ingest.bench import ML100K_GENRES

                genres.append(
                    "|".join(g for g, f in zip(ML100K_GENRES, parts[-19:], strict=False) if f == "1")
                )
            else:
                genres.append(parts[2])
    cats = [json.dumps([g for g in (x or "").split("|") if g and g != "(no genres listed)"]) for x in genres]
    return _items_frame({"join_key": ids, "title": titles, "brand": [None] * len(ids), "categories": cats})


def iter_items(source: str, path: Path, log: ParseLog, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Any]:
    """Stream one item table of `source` as normalized frames (see module docstring for the columns):
    Amazon metadata in blocks of ~`chunk_bytes` (line numbers in the log count across blocks); the
    small MovieLens and benchmark item tables as one frame."""
    path = Path(path)
    if source == "amazon2018":
        return _amazon_meta(path, log, "asin", "brand", "category", False, chunk_bytes)
    if source == "amazon2014":
        return _amazon_meta(path, log, "asin", "brand", "categories", True, chunk_bytes)
    if source == "amazon2023":
        return _amazon_meta(path, log, "parent_asin", "store", "categories", False, chunk_bytes)
    if source == "movielens":
        return iter([_movielens_items(path, log)])
    from scalerec.data.ingest.bench import read_bench_items

    return iter([read_bench_items(path, log)])


def read_items(source: str, path: Path, log: ParseLog) -> Any:
    """Read one whole item table of `source` (see module docstring for the columns)."""
    import polars as pl

    frames = list(iter_items(source, path, log))
    return pl.concat(frames) if frames else _empty_items()


def merge_items(tables: list[Any]) -> Any:
    """Merge several item tables on `join_key`: later tables fill fields the earlier left empty."""
    import polars as pl

    if not tables:
        return None
    out = tables[0]
    for extra in tables[1:]:
        joined = out.join(extra, on="join_key", how="full", coalesce=True, suffix="_r")
        out = joined.select(
            "join_key",
            *[
                pl.when(pl.col(c).is_null() | (pl.col(c).cast(pl.String, strict=False) == ""))
                .then(pl.col(f"{c}_r"))
                .otherwise(pl.col(c))
                .alias(c)
                if c != "categories"
                else pl.when(pl.col(c).is_null() | (pl.col(c).list.len() == 0))
                .then(pl.col(f"{c}_r"))
                .otherwise(pl.col(c))
                .alias(c)
                for c in ("item_key", "title", "brand", "categories")
            ],
        )
    return out


def parse_json_list(text: str | None) -> list[str]:
    """A JSON list of strings stored in a TSV cell (S3Rec item tables); [] when absent."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return [text]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
