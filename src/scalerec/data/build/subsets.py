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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from scalerec.data.build.card import StepSum, write_card
from scalerec.data.build.items import write_sub_items
from scalerec.data.build.output import INTER_SCHEMA, USERS_SCHEMA, parquet_content_hash, sink_parquet
from scalerec.errors import UserError

if TYPE_CHECKING:
    from polars import DataFrame

_UNITS = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}


def parse_size(label: str) -> int:
    """`"100K"` → 100000, `"1.5M"` → 1500000, `"2500"` → 2500."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMB]?)\s*", str(label).upper())
    if not m:
        raise UserError(f"subset size '{label}' is not like 100K, 1M or 2500")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


Part = Callable[[], "tuple[DataFrame, DataFrame]"]
"""One slice of the final dataset in user order: `(interactions, users)` of consecutive user ids
(the whole dataset in memory, or one shard read back from disk)."""


def _prefixes(
    parts: list[Part], sizes: list[int], n_items: int
) -> tuple[list[int | None], list[np.ndarray], int]:
    """For each size: the last user id of the shortest user prefix reaching it (None: never), the
    items that prefix touches (bool by item_id), and the total interaction count read."""
    last: list[int | None] = [None] * len(sizes)
    seen = [np.zeros(n_items + 1, dtype=bool) for _ in sizes]
    total = 0
    for part in parts:
        if all(k is not None for k in last):
            break
        inter, _ = part()
        uids, iids = inter["user_id"].to_numpy(), inter["item_id"].to_numpy()
        if not len(uids):
            continue
        uniq, counts = np.unique(uids, return_counts=True)
        cum = total + np.cumsum(counts)
        for j, size in enumerate(sizes):
            if last[j] is not None:
                continue
            if cum[-1] >= size:
                last[j] = int(uniq[np.searchsorted(cum, size)])
                seen[j][iids[uids <= last[j]]] = True
            else:
                seen[j][iids] = True
        total = int(cum[-1])
    return last, seen, total


def _write_prefix(
    parts: list[Part], k: int, seen: np.ndarray, items: Path, sub_dir: Path, scratch: Path
) -> tuple[int, StepSum, int]:
    """Users 1..k with item ids re-densified (key order kept) → `sub_dir`, with the rows of `items`
    (an items.parquet) they touch; one part or one item chunk in memory at a time.
    Returns (items, step counter, users)."""
    new_id = np.cumsum(seen).astype(np.int32)
    stats = StepSum(int(seen.sum()) + 1)
    inter_parts, user_parts, n_users = [], [], 0
    for n, part in enumerate(parts):
        inter, users = part()
        if not len(inter):
            continue
        if inter["user_id"][0] > k:
            break
        inter = inter.filter(pl.col("user_id") <= k)
        inter = inter.with_columns(pl.Series("item_id", new_id[inter["item_id"].to_numpy()]))
        users = users.filter(pl.col("user_id") <= k)
        inter_parts.append(scratch / f"inter-{n:05d}.arrow")
        user_parts.append(scratch / f"users-{n:05d}.arrow")
        inter.write_ipc(inter_parts[-1], compression="uncompressed")
        users.write_ipc(user_parts[-1], compression="uncompressed")
        stats.add(inter["user_id"].to_numpy(), inter["item_id"].to_numpy())
        n_users += len(users)
    sink_parquet(inter_parts, sub_dir / "interactions.parquet", INTER_SCHEMA)
    sink_parquet(user_parts, sub_dir / "users.parquet", USERS_SCHEMA)
    for p in inter_parts + user_parts:
        p.unlink()
    n_items = write_sub_items(items, seen, sub_dir)
    return n_items, stats, n_users


def write_subsets(
    dest: Path, parts: list[Part], n_items: int, labels: list[str], parent_card: dict[str, Any]
) -> list[dict[str, Any]]:
    """Write `subsets/<label>/` (files + card) for each size label; one summary row per label.

    The one subset writer of both prepare paths: `parts` are read once to find each prefix, then
    once per subset to write it, so memory is one part (the whole dataset or one shard); item
    tables are read from `dest/items.parquet` (item ids 1..`n_items`) chunk by chunk.
    """
    labels = sorted(labels, key=parse_size)
    sizes = [parse_size(label) for label in labels]
    last, seen, total = _prefixes(parts, sizes, n_items)
    scratch = dest / "_subset_parts"
    scratch.mkdir(parents=True, exist_ok=True)
    out = []
    for label, size, k, items_seen in zip(labels, sizes, last, seen, strict=True):
        row = {"label": label, "size": size}
        if k is None or not total:
            out.append(
                {
                    **row,
                    "skipped": f"dataset has only {total:,} interactions",
                    "n_users": 0,
                    "n_items": 0,
                    "n_interactions": 0,
                }
            )
            continue
        sub_dir = dest / "subsets" / label
        sub_dir.mkdir(parents=True)
        n_sub, stats, n_users = _write_prefix(parts, k, items_seen, dest / "items.parquet", sub_dir, scratch)
        row.update(n_users=n_users, n_items=n_sub, n_interactions=stats.rows)
        card = {
            **{key: v for key, v in parent_card.items() if key != "subsets"},
            **row,
            "name": f"{parent_card.get('name', '')}/{label}",
            "parent": parent_card.get("name"),
            "steps": [*parent_card["steps"], stats.stats(f"subset_{label}")],
        }
        card["dataset_hash"] = parquet_content_hash(sub_dir / "interactions.parquet")
        write_card(sub_dir, card)
        out.append(row)
    scratch.rmdir()
    return out


def excluded_keys(paths: list[Path]) -> list[str]:
    """User keys to exclude: from dataset dirs (users.parquet), P5 datamaps.json[.gz] or key lists."""
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
