"""The per-row steps of `prepare`: dedupe, metadata and title filters, exclusions, k-core, dense ids.

Every step is per row, per item (through the global `ItemFilter`) or per user, so the same
functions run on all rows at once (in memory) or on one user shard at a time (`shards.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from scalerec.data.build.config import PrepareConfig

if TYPE_CHECKING:
    from polars import DataFrame

    from scalerec.data.ingest.meta import MetaTable

Record = Any
"""`record(step, df, reason=None, n=0)`: the card's per-step counter (`prepare.py`)."""


def with_domain(items: DataFrame, pooled: bool) -> DataFrame:
    """Items of a pooled dataset get `domain`, the prefix of their namespaced key (`games:B00X`)."""
    if not pooled:
        return items
    return items.with_columns(pl.col("item_key").str.extract(r"^([^:]*):", 1).alias("domain"))


def with_item_domain(inter: DataFrame, items: DataFrame) -> DataFrame:
    """Interactions get their item's `domain` when the items have one (pooled datasets)."""
    if "domain" not in items.columns:
        return inter
    domain = items.select("item_id", "domain")
    return inter.join(domain, on="item_id", how="left", maintain_order="left")


def dedupe(inter: DataFrame) -> DataFrame:
    """Drop repeated (user, item, timestamp) rows, keeping the earliest arrival.

    Sort-based (neighbours compared after sorting) instead of a hash `unique` over three
    columns, which costs ~5x more peak memory on 20M+ rows.
    """
    inter = inter.sort("u", "i", "timestamp", "seq")
    same = (
        (pl.col("u") == pl.col("u").shift())
        & (pl.col("i") == pl.col("i").shift())
        & (pl.col("timestamp") == pl.col("timestamp").shift())
    )
    return inter.filter(~same.fill_null(False))


def k_core(inter: DataFrame, k_user: int, k_item: int) -> DataFrame:
    while True:
        n = len(inter)
        if k_item > 0:
            inter = inter.filter(pl.len().over("i") >= k_item)
        inter = inter.filter(pl.len().over("u") >= k_user)
        if len(inter) == n or k_item == 0:
            return inter


@dataclass
class ItemFilter:
    """Per item code: which metadata filters drop it (None: no metadata table was given).

    `info`: the item codes with the metadata line (`_row`) and `title_issue` of each; the text
    columns stay in `meta` until `items_frame` reads them for the surviving items.
    """

    info: DataFrame
    no_meta: np.ndarray | None = None
    issue: dict[str, np.ndarray] = field(default_factory=dict)
    meta: MetaTable | None = None


def item_filter(items: DataFrame, meta: MetaTable | None, spared: frozenset[str] = frozenset()) -> ItemFilter:
    """Join the encoded item table with the metadata (`scalerec.data.ingest.meta.MetaTable`) and flag
    items per drop reason."""
    if meta is None:
        return ItemFilter(items)
    info = items.join(meta.flags(), left_on="item_key", right_on="join_key", how="left").sort("i")
    n = len(info)
    no_meta = np.zeros(n, dtype=bool)
    no_meta[info.filter(pl.col("_row").is_null())["i"].to_numpy()] = True
    issue = {}
    for reason in ("junk_title", "empty_title"):
        issue[reason] = np.zeros(n, dtype=bool)
        issue[reason][info.filter(pl.col("title_issue") == reason)["i"].to_numpy()] = True
    if spared:  # pooled: domains whose items keep their title issues
        domain = info["item_key"].str.extract(r"^([^:]*):", 1)
        keep = info.filter(domain.is_in(list(spared)))["i"].to_numpy()
        for mask in issue.values():
            mask[keep] = False
    return ItemFilter(info, no_meta, issue, meta)


def drop_items(inter: DataFrame, bad: np.ndarray) -> DataFrame:
    return inter.filter(pl.Series(~bad[inter["i"].to_numpy()]))


def filter_rows(
    cfg: PrepareConfig,
    inter: DataFrame,
    users: DataFrame,
    flags: ItemFilter,
    excluded: list[str] | None,
    record: Record,
) -> DataFrame:
    """Dedupe, metadata/title, exclusions, min interactions per user; `record(step, df, reason, n)`.

    Works on all rows or on one user shard alike: every step is per row, per item (through
    `flags`) or per user. `users`: `u, user_key` of the users in `inter`.
    """
    if cfg.dedupe:
        before = len(inter)
        inter = dedupe(inter)
        record("dedupe", inter, "duplicate", before - len(inter))
    if flags.no_meta is not None:
        if cfg.require_metadata:
            before = len(inter)
            inter = drop_items(inter, flags.no_meta)
            record("join_metadata", inter, "no_metadata", before - len(inter))
        if cfg.title_rules()[0]:
            for reason in ("junk_title", "empty_title"):
                before = len(inter)
                inter = drop_items(inter, flags.issue[reason])
                record(f"drop_{reason}", inter, reason, before - len(inter))
    if excluded is not None:
        key = pl.col("user_key")
        if cfg.domains:  # pooled: a downstream user is excluded from every domain
            key = key.str.replace(r"^[^:]*:", "")
        excl = users.filter(key.is_in(excluded)).select("u")
        before = len(inter)
        inter = inter.join(excl, on="u", how="anti")
        record("exclude_users", inter, "excluded_users", before - len(inter))
    before = len(inter)
    inter = inter.filter(pl.len().over("u") >= cfg.min_user_interactions)
    record("min_user_interactions", inter, "below_min_interactions", before - len(inter))
    return inter


def items_frame(i_map: DataFrame, flags: ItemFilter, pooled: bool = False) -> DataFrame:
    """`i_map` (`i`, `item_id`) + item info → the items.parquet frame, sorted by item_id; the metadata
    text is read for these items only. `pooled`: add the `domain` column (the item key's prefix)."""
    info = i_map.join(flags.info, on="i").sort("item_id")
    if flags.meta is not None:
        text = flags.meta.text_by_id(info.filter(pl.col("_row").is_not_null()))
        if len(text) == len(info):  # every item has metadata: same ids in the same order
            info = info.hstack(text.drop("item_id"))
        else:
            info = info.join(text, on="item_id", how="left", maintain_order="left")
        del text
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


def densify(
    inter: DataFrame, users: DataFrame, flags: ItemFilter, pooled: bool = False
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Dense ids from 1 (users keep hash order, items keep key order); sorted interactions."""
    u_map = inter.select(pl.col("u").unique().sort()).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("user_id")
    )
    i_map = inter.select(pl.col("i").unique().sort()).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("item_id")
    )
    out = (
        inter.join(u_map, on="u")
        .join(i_map, on="i")
        .sort("user_id", "timestamp", "seq")
        .select("user_id", "item_id", pl.col("timestamp").cast(pl.Int64), pl.col("rating").cast(pl.Float32))
    )
    users_out = u_map.join(users, on="u").sort("user_id").select("user_id", "user_key")
    items = items_frame(i_map, flags, pooled)
    return with_item_domain(out, items), users_out, items
