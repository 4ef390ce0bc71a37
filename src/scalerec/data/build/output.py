"""The Parquet files of the dataset-dir contract, written from frames or from per-shard IPC pieces.

Both prepare paths and the subset writer end here, so `interactions.parquet` and `users.parquet`
have one schema whatever path produced them (`domain` is an extra String column of pooled
datasets); `items.parquet` is written chunk by chunk by `items.py`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from polars import DataFrame
    from polars._typing import PolarsDataType

ROW_GROUP = 1 << 20
INTER_SCHEMA: dict[str, PolarsDataType] = {
    "user_id": pl.Int32,
    "item_id": pl.Int32,
    "timestamp": pl.Int64,
    "rating": pl.Float32,
}
USERS_SCHEMA: dict[str, PolarsDataType] = {"user_id": pl.Int32, "user_key": pl.String}


def write_dataset(dest: Path, inter: DataFrame, users: DataFrame) -> None:
    """interactions.parquet and users.parquet from frames in memory (items: `items.py`)."""
    inter.write_parquet(dest / "interactions.parquet", row_group_size=ROW_GROUP)
    users.with_columns(pl.col("user_id").cast(pl.Int32)).write_parquet(dest / "users.parquet")


def sink_parquet(parts: list[Path], dest: Path, schema: dict[str, PolarsDataType]) -> None:
    """Concatenate IPC files, in order, into one Parquet file (polars streaming engine: bounded
    memory, all cores), in row groups of `ROW_GROUP` rows; `schema` columns first and cast,
    any other column (a pooled dataset's `domain`) kept after them."""
    if not parts:
        pl.DataFrame(schema=schema).write_parquet(dest)
        return
    frame = pl.concat([pl.scan_ipc(p) for p in parts])
    rest = [c for c in frame.collect_schema().names() if c not in schema]
    frame = frame.select([*(pl.col(c).cast(t) for c, t in schema.items()), *rest])
    frame.sink_parquet(dest, row_group_size=ROW_GROUP, engine="streaming")


def parquet_content_hash(path: Path) -> str:
    """`card.content_hash` of an interactions.parquet, one column and row group at a time."""
    h = hashlib.sha256()
    pf = pq.ParquetFile(str(path))
    for col in ("user_id", "item_id", "timestamp"):
        for batch in pf.iter_batches(batch_size=ROW_GROUP, columns=[col]):
            h.update(np.ascontiguousarray(batch.column(0).to_numpy()).tobytes())
    return h.hexdigest()[:16]
