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


def with_item_domain(inter: DataFrame, items: DataFrame | None) -> DataFrame:
    """Interactions get their item's `domain` when the items have one (pooled datasets)."""
    if items is None or "domain" not in items.columns:
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

    `info`: `i, item_key, _row` (the metadata line; absent without metadata), one row per item
    code in code order; it lives until the item table is written, so it keeps only what that
    needs. The text columns stay in `meta` until `items.write_items_table` reads them for the
    surviving items.
    """

    info: DataFrame
    no_meta: np.ndarray | None = None
    issue: dict[str, np.ndarray] = field(default_factory=dict)
    meta: MetaTable | None = None


def item_filter(items: DataFrame, meta: MetaTable | None, spared: frozenset[str] = frozenset()) -> ItemFilter:
    """Join the encoded item table (`i, item_key`, in code order) with the metadata keys
    (`scalerec.data.ingest.meta.MetaTable`) and flag items per drop reason.

    The join keeps the left order (row = code) and reads line and title issue from the Int64 `_key`
    instead of sorting and carrying a String issue column: at the full 2018 scale each would be
    one more 15M-row copy at the step that then set the peak.
    """
    from scalerec.data.ingest.meta import ISSUES, key_row

    items = items.select("i", "item_key")
    if not np.array_equal(items["i"].to_numpy(), np.arange(len(items))):
        raise RuntimeError("item table is not in code order; encode_items numbers its rows in order")
    if meta is None:
        return ItemFilter(items)
    keys = meta.keys.select("join_key", "_key")
    info = items.join(keys, left_on="item_key", right_on="join_key", how="left", maintain_order="left")
    no_meta = info["_key"].is_null().to_numpy()
    code = (info["_key"] % 4).fill_null(0).to_numpy()
    issue = {reason: code == c for c, reason in enumerate(ISSUES) if reason}
    if spared:  # pooled: domains whose items keep their title issues
        domain = info["item_key"].str.extract(r"^([^:]*):", 1)
        keep = info.filter(domain.is_in(list(spared)))["i"].to_numpy()
        for mask in issue.values():
            mask[keep] = False
    return ItemFilter(info.select("i", "item_key", key_row(pl.col("_key"))), no_meta, issue, meta)


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


def densify(inter: DataFrame, users: DataFrame) -> tuple[DataFrame, DataFrame, np.ndarray]:
    """Dense ids from 1 (users keep hash order, items keep key order): the sorted interactions, the
    users, and the kept item codes `i` in item-id order (`items.write_items_table` writes their table)."""
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
    return out, users_out, i_map["i"].to_numpy()
