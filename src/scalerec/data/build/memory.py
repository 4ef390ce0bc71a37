"""The in-memory path of `prepare`: every parsed row in RAM as int columns (up to `shard_above_rows`).

Below a few million rows this is the faster path; `shards.py` runs the same steps shard by shard
and writes the same files and card.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalerec.data.build.card import content_hash, step_stats
from scalerec.data.build.config import PrepareConfig
from scalerec.data.build.items import write_items_table
from scalerec.data.build.output import write_dataset
from scalerec.data.build.rows import Staged, encode, encode_items, user_key_map
from scalerec.data.build.steps import densify, filter_rows, item_filter, k_core, with_item_domain
from scalerec.data.build.subsets import write_subsets

if TYPE_CHECKING:
    from polars import DataFrame

    from scalerec.data.ingest.meta import MetaTable


def prepare_in_memory(
    cfg: PrepareConfig,
    staged: Staged,
    meta: MetaTable | None,
    excluded: list[str] | None,
    tmp: Path,
    card: dict[str, Any],
) -> None:
    """Codes, filters, k-core, dense ids, dataset files and subsets; fills `card` in place."""
    steps, dropped = card["steps"], card["dropped"]

    def record(step: str, df: DataFrame, reason: str | None = None, n: int = 0) -> None:
        steps.append(step_stats(step, df["u"].to_numpy(), df["i"].to_numpy(), dense=True))
        if reason:
            dropped[reason] = dropped.get(reason, 0) + int(n)

    inter, users, items = staged.release()
    card["source"]["rows_parsed"] = len(inter)
    items = encode_items(items)
    mapping = user_key_map(cfg)
    if mapping:
        users = users.with_columns(users["user_key"].replace(mapping))
    inter, users = encode(inter, users, items, cfg.seed)
    record("parse", inter)
    flags = item_filter(items, meta, cfg.title_rules()[1])
    inter = filter_rows(cfg, inter, users, flags, excluded, record)
    if cfg.k_core > 0:
        before = len(inter)
        inter = k_core(inter, cfg.k_core, cfg.k_core)
        record("k_core", inter, "below_k_core", before - len(inter))
    inter, users_out, codes = densify(inter, users)
    domains = write_items_table(
        tmp, codes, flags.info, flags.meta, tmp / "_items_text", pooled=bool(cfg.domains)
    )
    inter = with_item_domain(inter, domains)
    write_dataset(tmp, inter, users_out)
    card.update(n_users=len(users_out), n_items=len(codes), n_interactions=len(inter))
    card["subsets"] = write_subsets(tmp, [lambda: (inter, users_out)], len(codes), cfg.subsets, card)
    card["dataset_hash"] = content_hash(inter)
