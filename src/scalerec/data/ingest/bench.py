"""Readers of the benchmark interchange formats: RecBole atomic files and S3Rec sequences.

Most published numbers (SASRec, S3Rec, UniSRec, the paper's Beauty/Sports) come from these
already-processed files, so reproducing their counts means reading them as they are: RecBole's
TSV with typed headers (`item_id:token`, `item_id_list:token_seq`), S3Rec's `user item item …`
lines (chronological, no timestamps: the position is the time), and the item text tables that
travel with them (`items.tsv.gz`, `*.item`, P5 `datamaps.json` for id → ASIN).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scalerec.data.ingest.frames import finish_block, normalized_items, parse_json_list
from scalerec.data.ingest.parse import (
    ParseLog,
    iter_blocks,
    lines_frame,
    reject,
    reject_binary,
    split_delimited,
)
from scalerec.errors import UserError

ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def _header(path: Path, log: ParseLog) -> list[str]:
    for _, block in iter_blocks(path, log, chunk_bytes=1 << 16):
        return [h.split(":")[0] for h in block.split(b"\n", 1)[0].decode("utf-8", "replace").split("\t")]
    return []


def _sequence_rows(df: Any, user_col: str, list_col: str, sep: str, target_col: str | None = None) -> Any:
    """Rows holding a whole history → one row per (user, item) with position as timestamp."""
    import polars as pl

    items = pl.col(list_col).str.strip_chars().str.split(sep)
    if target_col is not None:
        items = items.list.concat(pl.concat_list(pl.col(target_col).str.strip_chars()))
    out = df.select(pl.col(user_col).str.strip_chars().alias("user_key"), items.alias("item_key"))
    out = out.with_columns(pl.int_ranges(0, pl.col("item_key").list.len()).alias("timestamp"))
    out = out.explode("item_key", "timestamp").filter(pl.col("item_key") != "")
    return out.select(
        "user_key", "item_key", pl.lit(None, pl.Float32).alias("rating"), pl.col("timestamp").cast(pl.Int64)
    )


def recbole_inter(path: Path, log: ParseLog) -> Iterator[Any]:
    """RecBole `.inter` (per-interaction rows, or per-user `item_id_list` + `item_id` rows)."""
    names = _header(path, log)
    if "user_id" not in names or "item_id" not in names:
        raise UserError(f"{path}, line 1: RecBole header needs user_id and item_id columns, got {names}")
    for first, block in iter_blocks(path, log):
        df = lines_frame(block, first)
        if first == 1:
            df = df.slice(1)
        df = split_delimited(df, "\t", names, path, log)
        if "item_id_list" in names:
            yield _sequence_rows(df, "user_id", "item_id_list", " ", target_col="item_id")
            continue
        keep = {"user_id": "user_key", "item_id": "item_key", "rating": "rating", "timestamp": "timestamp"}
        if "timestamp" not in names:
            keep["time"] = "timestamp"  # ReChorus files (`user_id item_id time`)
        yield finish_block(df.rename({k: v for k, v in keep.items() if k in names}), path, log)


def s3rec_sequences(path: Path, log: ParseLog) -> Iterator[Any]:
    """S3Rec `user item item …` lines (space-separated, chronological)."""
    import polars as pl

    for first, block in iter_blocks(path, log):
        df = lines_frame(block, first)
        df = reject(
            df, pl.col("line").is_null() | (pl.col("line").str.strip_chars() == ""), "empty_line", path, log
        )
        df = reject_binary(df, path, log)
        df = reject(
            df,
            ~pl.col("line").str.strip_chars().str.contains(r"^\S+( \S+)+$"),
            "wrong_column_count",
            path,
            log,
        )
        df = df.with_columns(pl.col("line").str.strip_chars().str.splitn(" ", 2).alias("_p")).unnest("_p")
        yield _sequence_rows(df, "field_0", "field_1", " ")


def _recbole_items(path: Path) -> dict[str, list[Any]]:
    lines = _read_text(path).splitlines()
    names = [h.split(":")[0] for h in lines[0].split("\t")]
    title_col = next((i for i, n in enumerate(names) if "title" in n), None)
    cat_col = next(
        (i for i, n in enumerate(names) if n in ("class", "genre", "categories", "category")), None
    )
    brand_col = names.index("brand") if "brand" in names else None
    rows: dict[str, list[Any]] = {"join_key": [], "title": [], "brand": [], "categories": []}
    for line in lines[1:]:
        parts = line.split("\t")
        if not line.strip():
            continue

        def get(i: int | None, parts: list[str] = parts) -> str | None:
            return parts[i] if i is not None and i < len(parts) else None

        rows["join_key"].append(parts[0])
        rows["title"].append(get(title_col))
        rows["brand"].append(get(brand_col))
        cats = get(cat_col)
        rows["categories"].append(json.dumps([c for c in (cats or "").split(" ") if c]))
    return rows


def _tsv_items(path: Path) -> dict[str, list[Any]]:
    import csv
    import io

    reader = csv.DictReader(io.StringIO(_read_text(path)), delimiter="\t")
    rows: dict[str, list[Any]] = {"join_key": [], "item_key": [], "title": [], "brand": [], "categories": []}
    for rec in reader:
        rows["join_key"].append(rec["item_id"])
        rows["item_key"].append(rec.get("asin") or rec.get("business_id") or rec["item_id"])
        rows["title"].append(rec.get("title") or rec.get("name"))  # Yelp: business name
        rows["brand"].append(rec.get("brand"))
        rows["categories"].append(json.dumps(parse_json_list(rec.get("categories") or rec.get("attributes"))))
    return rows


def _datamaps_items(path: Path) -> dict[str, list[Any]]:
    id2item = json.loads(_read_text(path))["id2item"]
    keys = list(id2item)
    return {
        "join_key": keys,
        "item_key": [id2item[k] for k in keys],
        "title": [None] * len(keys),
        "brand": [None] * len(keys),
        "categories": ["[]"] * len(keys),
    }


def datamaps_users(path: Path) -> dict[str, str]:
    """P5 `datamaps.json[.gz]` → {S3Rec user int id: reviewerID}."""
    return dict(json.loads(_read_text(path)).get("id2user", {}))


def _index_map(path: Path) -> dict[str, str]:
    """`<name>.item2index[.gz]` lines `ASIN<TAB>index` → {ASIN: index}."""
    pairs = (line.split("\t") for line in _read_text(path).splitlines() if line.strip())
    return {p[0].strip(): p[1].strip() for p in pairs if len(p) >= 2}


def _index_items(path: Path) -> dict[str, list[Any]]:
    """UniSRec/ReChorus `.item2index`: the interaction files' int ids → ASINs (no text)."""
    index = _index_map(path)
    return {
        "join_key": list(index.values()),
        "item_key": list(index),
        "title": [None] * len(index),
        "brand": [None] * len(index),
        "categories": ["[]"] * len(index),
    }


def _text_items(path: Path) -> dict[str, list[Any]]:
    """UniSRec/ReChorus `<name>.text`: TSV `ASIN<TAB>text` with a header; the text (title, category
    path and brand run together) becomes the title. Rows are keyed by the interaction files' int
    ids through the sibling `<name>.item2index[.gz]` when it exists, else by the ASIN."""
    lines = _read_text(path).splitlines()[1:]
    stem = path.name.split(".text")[0]
    index_files = sorted(path.parent.glob(f"{stem}.item2index*"))
    index = _index_map(index_files[0]) if index_files else None
    rows: dict[str, list[Any]] = {"join_key": [], "item_key": [], "title": [], "brand": [], "categories": []}
    for line in lines:
        asin, _, text = line.partition("\t")
        asin = asin.strip()
        if not asin or (index is not None and asin not in index):
            continue
        rows["join_key"].append(index[asin] if index is not None else asin)
        rows["item_key"].append(asin)
        rows["title"].append(text.strip())
        rows["brand"].append(None)
        rows["categories"].append("[]")
    return rows


def read_bench_items(path: Path, log: ParseLog) -> Any:
    """Item table for RecBole/S3Rec/UniSRec data: `.item`, `items*.tsv[.gz]`, P5 `datamaps.json[.gz]`,
    or `.text` (+ `.item2index`)."""

    if not Path(path).is_file():
        raise UserError(f"item table not found: {path}")
    path = Path(path)
    name = path.name
    if ".text" in name:
        rows = _text_items(path)
    elif ".item2index" in name:
        rows = _index_items(path)
    elif ".item" in name:
        rows = _recbole_items(path)
    elif "datamaps" in name:
        rows = _datamaps_items(path)
    elif ".tsv" in name:
        rows = _tsv_items(path)
    else:
        raise UserError(
            f"{path}: unknown item table format (expected .item, .tsv[.gz], .text or datamaps.json[.gz])"
        )
    return normalized_items(rows)
