"""`items.parquet` of a dataset and of its subsets, written in item-id chunks.

The item table is the one output that grows with the catalog rather than with a shard: at the full
2018 scale (233M ratings, 14.2M kept items) building it as one frame — every kept item's text
gathered from the spilled metadata, reordered by item_id, then held while the interactions and
subsets were written — peaked at 8.3 GiB. Here each chunk of `ITEMS_CHUNK_ROWS` item ids is
assembled and appended to the Parquet file on its own (`MetaTable.text_chunks` buckets the text by
item-id range first), so memory is one chunk plus a few integers per item. The file's content is
the same whatever the chunk size (rows, order, columns, types); only its row groups differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from polars import DataFrame

    from scalerec.data.ingest.meta import MetaTable

ITEMS_CHUNK_ROWS = 1 << 18
"""Items per chunk and row group (~25 MB of synthetic 2018 text, a few copies of it while a chunk
is assembled); module-level so tests can force many chunks."""


class ItemsParquet:
    """An `items.parquet` appended to chunk by chunk (pyarrow); `item_id` Int32 and `categories`
    List(String) whatever the chunk's frame had (an empty chunk's literal columns)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None

    def write(self, items: DataFrame) -> None:
        table = items.with_columns(
            pl.col("item_id").cast(pl.Int32), pl.col("categories").cast(pl.List(pl.String))
        ).to_arrow()
        if self.writer is None:  # the first chunk (possibly empty) fixes the schema
            self.writer = pq.ParquetWriter(str(self.path), table.schema, compression="zstd")
        elif table.schema != self.writer.schema:
            table = table.cast(self.writer.schema)
        if table.num_rows:
            self.writer.write_table(table)

    def __enter__(self) -> ItemsParquet:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()


def with_domain(items: DataFrame, pooled: bool) -> DataFrame:
    """Items of a pooled dataset get `domain`, the prefix of their namespaced key (`games:B00X`)."""
    if not pooled:
        return items
    return items.with_columns(pl.col("item_key").str.extract(r"^([^:]*):", 1).alias("domain"))


def _chunk_frame(info: DataFrame, text: DataFrame | None, pooled: bool) -> DataFrame:
    """One chunk of items.parquet: item info (`item_id, item_key, …`, by item_id) + its text rows."""
    if text is not None:
        if len(text) == len(info):  # every item has metadata: same ids in the same order
            info = info.hstack(text.drop("item_id"))
        else:
            info = info.join(text, on="item_id", how="left", maintain_order="left")
    return with_domain(
        info.select(
            "item_id",
            pl.coalesce("item_key_out", "item_key").alias("item_key")
            if "item_key_out" in info.columns
            else "item_key",
            pl.col("title").fill_null("") if "title" in info.columns else pl.lit("").alias("title"),
            pl.col("brand").fill_null("") if "brand" in info.columns else pl.lit("").alias("brand"),
            pl.col("categories").fill_null([])
            if "categories" in info.columns
            else pl.lit([], pl.List(pl.String)).alias("categories"),
        ),
        pooled,
    )


def write_items_table(
    dest: Path,
    codes: np.ndarray,
    info: DataFrame,
    meta: MetaTable | None,
    scratch: Path,
    pooled: bool = False,
    chunk_rows: int | None = None,
) -> DataFrame | None:
    """`dest/items.parquet` of the kept items, `chunk_rows` item ids at a time.

    `codes`: the item codes `i` that survive, ascending (item_id = position + 1, so items keep key
    order); `info`: `i, item_key, _row` of every code, in code order (`steps.ItemFilter.info`);
    `meta`: where the text is (its rows `_row`), read for the surviving items only. Returns
    `item_id, domain` for a pooled dataset (what `with_item_domain` joins onto the interactions),
    else None.
    """
    chunk = max(1, chunk_rows or ITEMS_CHUNK_ROWS)
    n = len(codes)
    bounds = [*range(1, n + 1, chunk), n + 1] if n else [1, 1]
    if not np.array_equal(info["i"].to_numpy(), np.arange(len(info))):
        raise RuntimeError("item info is not indexed by item code; item_filter must keep one row per code")
    ids = pl.Series("item_id", np.arange(1, n + 1, dtype=np.int32))
    ranges = list(zip(bounds[:-1], bounds[1:], strict=True))
    texts: Iterator[DataFrame | None] = repeat(None, len(ranges))
    if meta is not None:
        order = pl.DataFrame([info["_row"].gather(codes), ids]).filter(pl.col("_row").is_not_null())
        texts = meta.text_chunks(order, bounds, scratch)
        del order
    domains = []
    with ItemsParquet(dest / "items.parquet") as out:
        # strict: `texts` is run to its end, which removes its scratch files
        for (lo, hi), text in zip(ranges, texts, strict=True):
            part = info[codes[lo - 1 : hi - 1]].with_columns(ids.slice(lo - 1, hi - lo))
            frame = _chunk_frame(part, text, pooled)
            out.write(frame)
            if pooled:
                domains.append(frame.select("item_id", "domain"))
    return pl.concat(domains) if pooled else None


def write_sub_items(src: Path, keep: np.ndarray, dest: Path, chunk_rows: int | None = None) -> int:
    """`src` (an items.parquet) → `dest/items.parquet` with the items where `keep[item_id]`, their
    ids re-densified in the same order; one chunk of `chunk_rows` rows in memory. Returns the count."""
    new_id = np.cumsum(keep).astype(np.int32)
    n = 0
    with ItemsParquet(dest / "items.parquet") as out:
        for batch in pq.ParquetFile(str(src)).iter_batches(batch_size=max(1, chunk_rows or ITEMS_CHUNK_ROWS)):
            items = pl.DataFrame(pl.from_arrow(batch))
            items = items.filter(pl.Series(keep[items["item_id"].to_numpy()]))
            out.write(items.with_columns(pl.Series("item_id", new_id[items["item_id"].to_numpy()])))
            n += len(items)
        if out.writer is None:  # `src` has no rows: the same columns, no rows
            out.write(pl.read_parquet(src))
    return n
