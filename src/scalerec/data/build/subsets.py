"""Nested scaled subsets (100K ⊂ 1M ⊂ 10M interactions) for data-scaling curves.

A scaling law in data size is only clean if a bigger subset contains the smaller one; otherwise
each point also changes *which* users are seen. Users are ordered once by a seeded hash of their
key (that order is also their user_id), and a subset is the shortest prefix of users whose
interactions reach the size, so nesting holds by construction and membership depends only on
(seed, user key), never on the other users. Item ids are re-densified inside each subset.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.errors import UserError

_UNITS = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}


def parse_size(label: str) -> int:
    """`"100K"` → 100000, `"1.5M"` → 1500000, `"2500"` → 2500."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMB]?)\s*", str(label).upper())
    if not m:
        raise UserError(f"subset size '{label}' is not like 100K, 1M or 2500")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def prefix_users(user_ids: np.ndarray, size: int) -> int | None:
    """Number of leading users (ids 1..K, sorted input) whose rows first reach `size`; None if never."""
    counts = np.bincount(user_ids)
    cum = np.cumsum(counts)
    if cum[-1] < size:
        return None
    return int(np.searchsorted(cum, size))


def subset_frames(inter: Any, users: Any, items: Any, n_users: int) -> tuple[Any, Any, Any]:
    """Interactions/users/items of the first `n_users` users, item ids re-densified (key order kept)."""
    import polars as pl

    sub = inter.filter(pl.col("user_id") <= n_users)
    i_map = sub.select(pl.col("item_id").unique().sort()).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("new_id")
    )
    sub = (
        sub.join(i_map, on="item_id", how="left", maintain_order="left")
        .with_columns(pl.col("new_id").alias("item_id"))
        .drop("new_id")
    )
    sub_items = (
        items.join(i_map, on="item_id")
        .with_columns(pl.col("new_id").alias("item_id"))
        .drop("new_id")
        .sort("item_id")
    )
    return sub, users.filter(pl.col("user_id") <= n_users), sub_items


def write_subsets(
    dest: Path, inter: Any, users: Any, items: Any, labels: list[str], parent_card: dict[str, Any]
) -> list[dict[str, Any]]:
    """Write `subsets/<label>/` for each size label; returns one summary row per label."""
    from scalerec.data.build.card import content_hash, step_stats, write_card
    from scalerec.data.build.prepare import write_dataset

    out = []
    uids = inter["user_id"].to_numpy()
    for label in sorted(labels, key=parse_size):
        size = parse_size(label)
        k = prefix_users(uids, size) if len(uids) else None
        if k is None:
            out.append(
                {
                    "label": label,
                    "size": size,
                    "skipped": f"dataset has only {len(uids):,} interactions",
                    "n_users": 0,
                    "n_items": 0,
                    "n_interactions": 0,
                }
            )
            continue
        sub, sub_users, sub_items = subset_frames(inter, users, items, k)
        sub_dir = dest / "subsets" / label
        sub_dir.mkdir(parents=True)
        write_dataset(sub_dir, sub, sub_users, sub_items)
        row = {
            "label": label,
            "size": size,
            "n_users": len(sub_users),
            "n_items": len(sub_items),
            "n_interactions": len(sub),
        }
        card = {
            **{k2: v for k2, v in parent_card.items() if k2 not in ("subsets",)},
            **row,
            "name": f"{parent_card.get('name', '')}/{label}",
            "parent": parent_card.get("name"),
            "steps": [
                *parent_card["steps"],
                step_stats(f"subset_{label}", sub["user_id"].to_numpy(), sub["item_id"].to_numpy()),
            ],
        }
        card["dataset_hash"] = content_hash(sub)
        write_card(sub_dir, card)
        out.append(row)
    return out


def excluded_keys(paths: list[Path]) -> list[str]:
    """User keys to exclude: from dataset dirs (users.parquet), P5 datamaps.json[.gz] or key lists."""
    import polars as pl

    keys: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            if not (p / "users.parquet").is_file():
                raise UserError(f"{p} has no users.parquet (not a prepared dataset dir)")
            keys += pl.read_parquet(p / "users.parquet")["user_key"].to_list()
        elif p.is_file():
            raw = p.read_bytes()
            text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8", "replace")
            if "datamaps" in p.name or text.lstrip().startswith("{"):
                keys += list(json.loads(text).get("user2id", {}))
            else:
                keys += [line.strip() for line in text.splitlines() if line.strip()]
        else:
            raise UserError(f"exclude_users: {p} not found")
    return keys
