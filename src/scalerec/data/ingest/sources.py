"""Readers of the raw public formats, and the one `SOURCES` table that names them.

Every reader turns its files into the normalized shapes of `scalerec.data.ingest.frames`, so the
build steps downstream are format-free. Formats: Amazon 2014 (ratings CSV `user,item,rating,time`,
5-core reviews JSON, metadata as Python dict literals), Amazon 2018 (ratings CSV
`item,user,rating,timestamp`, 5-core reviews, metadata JSON lines), Amazon 2023 (reviews/metadata
JSON lines, ms timestamps, `parent_asin`), MovieLens 100k/1m/20m+, RecBole atomic `.inter`/`.item`,
the S3Rec sequence format plus item tables (`bench.py`), and the user's own CSV/Parquet tables with
a column mapping (`tabular.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from scalerec.data.ingest.bench import ML100K_GENRES, read_bench_items, recbole_inter, s3rec_sequences
from scalerec.data.ingest.frames import empty_items, finish_block, normalized_items, read_delimited
from scalerec.data.ingest.jsonl import iter_json_records
from scalerec.data.ingest.parse import CHUNK_BYTES, ParseLog
from scalerec.data.ingest.tabular import read_table_interactions, read_table_items
from scalerec.errors import UserError

if TYPE_CHECKING:
    from polars import DataFrame

Columns = Mapping[str, str]
"""Our column name → the user's column name (only the `csv` source reads it)."""


@dataclass(frozen=True)
class Source:
    """How one raw format is read. `interactions(path, log, columns)` streams interaction blocks;
    `items(path, log, chunk_bytes, columns)` streams item frames; `needs_meta`: the format's
    interaction files carry no text, so a run without an item table is refused unless asked."""

    interactions: Callable[[Path, ParseLog, Columns], Iterator[DataFrame]]
    items: Callable[[Path, ParseLog, int, Columns], Iterator[DataFrame]]
    needs_meta: bool = False


def _json_inter(path: Path, log: ParseLog, keys: dict[str, str], ts_scale: int = 1) -> Iterator[DataFrame]:
    """JSON-lines reviews → interactions; `keys` maps our column → the record's field."""
    schema = {src: pl.String for src in keys.values()}
    for recs in iter_json_records(path, log, schema):
        df = recs.select([pl.col(src).alias(dst) for dst, src in keys.items()] + ["line_no"])
        df = df.with_columns(pl.concat_str(list(keys), separator=",", ignore_nulls=True).alias("line"))
        yield finish_block(df, path, log, ts_scale)


# 2014 and 2018 review files (`reviews_*_5.json.gz`, `*_5.json.gz`) share these keys.
_REVIEW_FIELDS = {
    "user_key": "reviewerID",
    "item_key": "asin",
    "rating": "overall",
    "timestamp": "unixReviewTime",
}


def _amazon_inter(csv_names: list[str]) -> Callable[[Path, ParseLog, Columns], Iterator[DataFrame]]:
    """Amazon 2014/2018: reviews JSON lines or a headerless ratings CSV with `csv_names`."""

    def read(path: Path, log: ParseLog, columns: Columns) -> Iterator[DataFrame]:
        if ".json" in path.name.lower():
            return _json_inter(path, log, _REVIEW_FIELDS)
        return read_delimited(path, log, ",", csv_names)

    return read


def _amazon2023_inter(path: Path, log: ParseLog, columns: Columns) -> Iterator[DataFrame]:
    fields = {"user_key": "user_id", "item_key": "parent_asin", "rating": "rating", "timestamp": "timestamp"}
    return _json_inter(path, log, fields, ts_scale=1000)


def _movielens_ratings(path: Path, log: ParseLog, columns: Columns) -> Iterator[DataFrame]:
    names = ["user_key", "item_key", "rating", "timestamp"]
    name = path.name.removesuffix(".gz")
    if name.endswith(".dat"):  # ml-1m / ml-10m
        return read_delimited(path, log, "::", names, encoding="latin-1")
    if name.endswith(".csv"):  # ml-20m / 25m / 32m
        return read_delimited(path, log, ",", names, header=True)
    return read_delimited(path, log, "\t", names, encoding="latin-1")  # ml-100k u.data


# ---------------------------------------------------------------------------------------- items


def _amazon_meta(key: str, brand: str, cats: str, literal: bool) -> Callable[..., Iterator[DataFrame]]:
    """Metadata lines → normalized item rows, one frame per block of ~`chunk_bytes`; rows without an
    item id are dropped and counted once, after the last block (as one `missing_item_id` entry)."""

    def read(path: Path, log: ParseLog, chunk_bytes: int, columns: Columns) -> Iterator[DataFrame]:
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

    return read


def _movielens_items(path: Path, log: ParseLog, chunk_bytes: int, columns: Columns) -> Iterator[DataFrame]:
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
                genres.append(
                    "|".join(g for g, f in zip(ML100K_GENRES, parts[-19:], strict=False) if f == "1")
                )
            else:
                genres.append(parts[2])
    cats = [json.dumps([g for g in (x or "").split("|") if g and g != "(no genres listed)"]) for x in genres]
    yield normalized_items({"join_key": ids, "title": titles, "brand": [None] * len(ids), "categories": cats})


def _bench_items(path: Path, log: ParseLog, chunk_bytes: int, columns: Columns) -> Iterator[DataFrame]:
    yield read_bench_items(path, log)


SOURCES: dict[str, Source] = {
    "amazon2014": Source(
        _amazon_inter(["user_key", "item_key", "rating", "timestamp"]),
        _amazon_meta("asin", "brand", "categories", literal=True),
        needs_meta=True,
    ),
    "amazon2018": Source(
        _amazon_inter(["item_key", "user_key", "rating", "timestamp"]),
        _amazon_meta("asin", "brand", "category", literal=False),
        needs_meta=True,
    ),
    "amazon2023": Source(
        _amazon2023_inter, _amazon_meta("parent_asin", "store", "categories", literal=False), needs_meta=True
    ),
    "movielens": Source(_movielens_ratings, _movielens_items),
    "recbole": Source(lambda p, log, c: recbole_inter(p, log), _bench_items),
    "s3rec": Source(lambda p, log, c: s3rec_sequences(p, log), _bench_items),
    "csv": Source(read_table_interactions, read_table_items),
}
"""Every supported raw format by its `--source` name."""


def source(name: str) -> Source:
    """The reader of `name`, or a `UserError` listing the known ones."""
    if name not in SOURCES:
        raise UserError(f"unknown source '{name}' (known: {', '.join(SOURCES)})")
    return SOURCES[name]


def read_interactions(
    name: str, path: Path, log: ParseLog, columns: Columns | None = None
) -> Iterator[DataFrame]:
    """Stream the interaction file of source `name` as normalized blocks (see `frames`)."""
    return source(name).interactions(Path(path), log, columns or {})


def iter_items(
    name: str, path: Path, log: ParseLog, chunk_bytes: int = CHUNK_BYTES, columns: Columns | None = None
) -> Iterator[DataFrame]:
    """Stream one item table of source `name` as normalized frames: Amazon metadata in blocks of
    ~`chunk_bytes` (line numbers in the log count across blocks); the small tables as one frame."""
    return source(name).items(Path(path), log, chunk_bytes, columns or {})


def read_items(name: str, path: Path, log: ParseLog, columns: Columns | None = None) -> DataFrame:
    """Read one whole item table of source `name` (see `frames` for the columns)."""
    frames = list(iter_items(name, path, log, columns=columns))
    return pl.concat(frames) if frames else empty_items()


def merge_items(tables: list[DataFrame]) -> DataFrame | None:
    """Merge several item tables on `join_key`: later tables fill fields the earlier left empty."""
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
