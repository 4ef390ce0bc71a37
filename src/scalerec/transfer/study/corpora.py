"""The study's datasets, derived from prepared dataset dirs with pyarrow only (no polars, so they can
be rebuilt anywhere): leave-one-domain-out pretraining corpora, user-capped copies for tiny runs,
and the nested target-fraction dirs the tuned baselines train on.

Leave-one-domain-out: the pooled corpus (`configs/data/pooled.toml`, users and items namespaced
`<domain>:<key>`, a `domain` column) minus every row of the held-out domain, minus every item whose
raw key is one of the target's items (an ASIN listed in two categories: Office and Scientific share
11), minus every user whose raw key is one of the target's users. Only keys that name the same thing
in two datasets are compared: 10-character ASINs for items, and non-numeric user keys (reviewer ids);
the numeric ids of the RecBole/ReChorus dumps (Games, Scientific, Office, MovieLens) are per-dataset
indices that collide by accident, so a user of those targets cannot be traced into another domain —
the manifest says so. Beauty's reviewers are already excluded by the pooled config.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scalerec.io import atomic_dir
from scalerec.transfer.domain import fraction_rows

ASIN = re.compile(r"^[0-9A-Z]{10}$")
MIN_LEN = 3
"""Users left with fewer interactions are dropped (leave-one-out needs 3 for a training transition)."""


def raw_key(key: str) -> str:
    """`games:B00ABC1234` → `B00ABC1234` (keys of a single-domain dataset have no prefix)."""
    return key.split(":", 1)[1] if ":" in key else key


def _keys(path: Path, column: str) -> list[str]:
    return [str(k) for k in pq.read_table(path, columns=[column])[column].to_pylist()]


def matchable_items(keys: list[str]) -> set[str]:
    """Raw item keys that identify an item across datasets (ASINs)."""
    return {k for k in map(raw_key, keys) if ASIN.match(k)}


def matchable_users(keys: list[str]) -> set[str]:
    """Raw user keys that identify a person across datasets (not per-dump numeric indices)."""
    return {k for k in map(raw_key, keys) if not k.isdigit()}


def _densify(values: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(new ids 1..n for `values`, the sorted old ids kept): old ids keep their order."""
    old = np.unique(keep)
    return (np.searchsorted(old, values) + 1).astype(np.int32), old


def _write(out: Path, inter: pa.Table, items: pa.Table, users: pa.Table, card: dict[str, Any]) -> Path:
    with atomic_dir(out) as tmp:
        pq.write_table(inter, tmp / "interactions.parquet")
        pq.write_table(items, tmp / "items.parquet")
        pq.write_table(users, tmp / "users.parquet")
        (tmp / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return out


def derive(
    src: Path,
    out: Path,
    drop_items: np.ndarray,
    drop_users: np.ndarray,
    max_users: int | None,
    note: dict[str, Any],
) -> dict[str, Any]:
    """Write `src` minus the given item and user ids (bool masks by old id), users left with fewer than
    `MIN_LEN` interactions, and users past the first `max_users`; ids re-densified in their old order."""
    inter = pq.read_table(src / "interactions.parquet")
    uid = inter["user_id"].to_numpy().astype(np.int64)
    iid = inter["item_id"].to_numpy().astype(np.int64)
    keep = ~drop_items[iid] & ~drop_users[uid]
    counts = np.bincount(uid[keep], minlength=len(drop_users))
    keep &= counts[uid] >= MIN_LEN
    if max_users is not None:
        kept_users = np.unique(uid[keep])[:max_users]
        keep &= np.isin(uid, kept_users)
    inter = inter.filter(pa.array(keep))
    new_u, old_u = _densify(uid[keep], uid[keep])
    new_i, old_i = _densify(iid[keep], iid[keep])
    inter = inter.set_column(0, "user_id", pa.array(new_u)).set_column(1, "item_id", pa.array(new_i))
    items = pq.read_table(src / "items.parquet")
    items = items.filter(pc.is_in(items["item_id"], pa.array(old_i.astype(np.int32)))).sort_by("item_id")
    items = items.set_column(0, "item_id", pa.array(np.arange(1, len(old_i) + 1, dtype=np.int32)))
    users = pq.read_table(src / "users.parquet")
    users = users.filter(pc.is_in(users["user_id"], pa.array(old_u.astype(np.int32)))).sort_by("user_id")
    users = users.set_column(0, "user_id", pa.array(np.arange(1, len(old_u) + 1, dtype=np.int32)))
    card = {
        "format_version": 1,
        "name": out.name,
        "n_users": len(old_u),
        "n_items": len(old_i),
        "n_interactions": inter.num_rows,
        "source": {"derived_from": str(src), **note},
        "steps": [],
        "dropped": {"rows": int((~keep).sum())},
    }
    _write(out, inter, items, users, card)
    return card


def leave_domain_out(
    pooled: Path, target: Path, domain: str | None, out: Path, max_users: int | None = None
) -> dict[str, Any]:
    """The pretraining corpus of `target`: `pooled` minus `domain` (None: no domain of its own in the
    pool) and minus the target's matchable items and users (see the module docstring)."""
    items = pq.read_table(pooled / "items.parquet", columns=["item_id", "item_key", "domain"])
    n_items = int(pc.max(items["item_id"]).as_py())
    t_items = matchable_items(_keys(target / "items.parquet", "item_key"))
    t_users = matchable_users(_keys(target / "users.parquet", "user_key"))
    drop_items = np.zeros(n_items + 1, dtype=bool)
    ids = items["item_id"].to_numpy()
    in_domain = (
        np.array([d == domain for d in items["domain"].to_pylist()]) if domain else np.zeros(len(ids), bool)
    )
    overlap = np.array([raw_key(k) in t_items for k in items["item_key"].to_pylist()])
    drop_items[ids[in_domain | overlap]] = True
    users = pq.read_table(pooled / "users.parquet")
    n_users = int(pc.max(users["user_id"]).as_py())
    drop_users = np.zeros(n_users + 1, dtype=bool)
    same = np.array([raw_key(k) in t_users for k in users["user_key"].to_pylist()], dtype=bool)
    drop_users[users["user_id"].to_numpy()[same]] = True
    note = {
        "held_out_domain": domain,
        "target": str(target),
        "items_in_domain": int(in_domain.sum()),
        "items_shared_with_target": int((overlap & ~in_domain).sum()),
        "users_shared_with_target": int(same.sum()),
        "target_matchable_users": len(t_users),
        "user_check": "reviewer ids compared"
        if t_users
        else "target user keys are per-dump numeric ids, not traceable across domains (the pooled "
        "config's exclude_users removed the reviewers that can be matched, e.g. Beauty's via datamaps)",
    }
    return derive(pooled, out, drop_items, drop_users, max_users, note)


def cap_users(src: Path, out: Path, max_users: int) -> dict[str, Any]:
    """`src` with only its first `max_users` users (user order = prepare's seeded hash) — tiny runs."""
    card = json.loads((src / "card.json").read_text())
    none_i = np.zeros(int(card["n_items"]) + 1, dtype=bool)
    none_u = np.zeros(int(card["n_users"]) + 1, dtype=bool)
    return derive(src, out, none_i, none_u, max_users, {"max_users": max_users})


def fraction_dataset(target: Path, out: Path, fraction: float) -> dict[str, Any]:
    """The target with only the training users of `fraction` (exactly `with_fraction`'s users), ids
    and catalog unchanged, so a run trained on it is evaluated on the full target's test users."""
    from scalerec.data.read.sequences import load_sequences

    n_users = load_sequences(target).n_users
    users = (fraction_rows(n_users, fraction) + 1).astype(np.int32)
    inter = pq.read_table(target / "interactions.parquet")
    inter = inter.filter(pc.is_in(inter["user_id"], pa.array(users)))
    card = json.loads((target / "card.json").read_text())
    card = {
        **card,
        "n_interactions": inter.num_rows,
        "fraction": fraction,
        "fraction_users": len(users),
        "derived_from": str(target),
    }  # n_users / n_items stay: same ids, same catalog
    with atomic_dir(out) as tmp:
        pq.write_table(inter, tmp / "interactions.parquet")
        for name in ("items.parquet", "users.parquet"):
            if (target / name).is_file():
                shutil.copyfile(target / name, tmp / name)
        (tmp / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card
