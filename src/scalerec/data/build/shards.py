"""The bounded-memory path of `prepare`: rows on disk in user-hash shards, one shard in RAM at a time.

Shard `s` holds every row of the users whose seeded user-order hash (`stable_hash64`, the hash
that orders user ids and nested subsets) has `s` as its top bits. The shards are therefore
consecutive ranges of the final user order: ranking users inside each shard and concatenating
the shards gives exactly the global order, and every per-user step (dedupe, exclusions, min
interactions, the user side of k-core, sorting, subset prefixes) runs shard by shard. Only
item-level state is global, and it is small (one entry per item): the key → code table, the
metadata flags, item counts for k-core and which items survive. Step statistics are summed
over shards as histograms of per-user counts, which give the same quantiles as the full
arrays.

Passes over the rows: parse → shard streams (Arrow IPC, uncompressed); per shard: codes,
filters, filtered shard; k-core only: one rewrite of the filtered shards per round; per shard:
dense ids, sorted rows appended to `interactions.parquet`; per subset: the shards of its user
prefix. Everything lives under the output's temporary dir and is removed before the rename.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.data.build.prepare import (
    ROW_COLUMNS,
    KeyTable,
    PrepareConfig,
    Staged,
    encode_items,
    filter_rows,
    item_filter,
    items_frame,
    stable_hash64,
    write_items,
)
from scalerec.data.build.subsets import parse_size

ROW_GROUP = 1 << 20


class ShardWriter:
    """Appends parsed rows to per-shard Arrow IPC streams and keeps the (global) item key table."""

    def __init__(self, root: Path, n_shards: int, seed: int, user_map: dict[str, str]) -> None:
        self.root, self.n_shards, self.seed, self.user_map = Path(root), n_shards, seed, user_map
        self.root.mkdir(parents=True, exist_ok=True)
        self.bits = n_shards.bit_length() - 1
        self.items = KeyTable("ih", "item_key")
        self.n = 0
        self._writers: dict[tuple[str, int], tuple[Any, Any, Any]] = {}

    def path(self, kind: str, shard: int) -> Path:
        return self.root / f"{kind}-{shard:05d}.arrow"

    def _write(self, kind: str, shard: int, df: Any) -> None:
        import pyarrow as pa

        table = df.to_arrow()
        entry = self._writers.get((kind, shard))
        if entry is None:
            sink = pa.OSFile(str(self.path(kind, shard)), "wb")
            entry = self._writers[(kind, shard)] = (sink, pa.ipc.new_stream(sink, table.schema), table.schema)
        if table.schema != entry[2]:
            table = table.cast(entry[2])
        entry[1].write_table(table)

    def shard_of(self, user_keys: Any) -> tuple[np.ndarray, np.ndarray]:
        h = stable_hash64(user_keys, self.seed)
        if self.bits == 0:
            return h, np.zeros(len(h), dtype=np.int32)
        return h, (h >> np.uint64(64 - self.bits)).astype(np.int32)

    def _shard_users(self, users: Any) -> Any:
        """`uh, user_key, h, shard` for distinct users `uh, user_key` (keys mapped first)."""
        import polars as pl

        if self.user_map:
            users = users.with_columns(pl.col("user_key").replace(self.user_map))
        h, shard = self.shard_of(users["user_key"])
        return users.with_columns(pl.Series("h", h), pl.Series("shard", shard))

    def _add(self, rows: Any, users: Any) -> None:
        rows = rows.join(users.select("uh", "shard"), on="uh")
        self._write_rows(rows)
        for (s,), part in users.partition_by("shard", as_dict=True).items():
            self._write("users", int(s), part.select("uh", "user_key", "h"))

    def _write_rows(self, rows: Any) -> None:
        for (s,), part in rows.partition_by("shard", as_dict=True).items():
            self._write("rows", int(s), part.select(*ROW_COLUMNS))
        self.n += len(rows)

    def add(self, block: Any) -> None:
        """One parsed block (`scalerec.data.build.prepare._blocks`)."""
        self.items.add(block)
        self._add(block.select(*ROW_COLUMNS), self._shard_users(block.select("uh", "user_key").unique("uh")))

    def take(self, staged: Staged) -> None:
        """Everything parsed so far in memory, when the row threshold is crossed (block by block,
        so the move needs no second copy of the rows)."""
        import polars as pl

        self.items.parts.extend(staged.items.parts)
        users = self._shard_users(staged.users.frame())
        for s, part in users.partition_by("shard", as_dict=True).items():
            self._write("users", int(s[0]), part.select("uh", "user_key", "h"))
        by_hash = users.sort("uh")
        uh_sorted, shard_of = by_hash["uh"].to_numpy(), by_hash["shard"].to_numpy()
        del users, by_hash
        while staged.rows:
            rows = staged.rows.pop(0)
            uh = rows["uh"].to_numpy()
            order = np.argsort(uh)  # sorted needles: searchsorted walks the user table in order
            shard = np.empty(len(uh), dtype=np.int32)
            shard[order] = shard_of[np.searchsorted(uh_sorted, uh[order])]
            self._write_rows(rows.with_columns(pl.Series("shard", shard)))

    def close(self) -> None:
        for sink, writer, _ in self._writers.values():
            writer.close()
            sink.close()
        self._writers.clear()

    def read(self, kind: str, shard: int) -> Any | None:
        """One shard's stream as a DataFrame (None if the shard got no rows); the file is removed."""
        import polars as pl
        import pyarrow as pa

        path = self.path(kind, shard)
        if not path.exists():
            return None
        with pa.OSFile(str(path), "rb") as src:
            table = pa.ipc.open_stream(src).read_all()
        path.unlink()
        return pl.from_arrow(table)


def _read_ipc(path: Path) -> Any:
    """An IPC file copied into memory (never memory-mapped: the k-core rounds rewrite it in place)."""
    import polars as pl
    import pyarrow as pa

    with pa.OSFile(str(path), "rb") as src:
        return pl.from_arrow(pa.ipc.open_file(src).read_all())


class StepSum:
    """One pipeline step summed over shards: rows, histogram of rows per user, items present."""

    def __init__(self, n_items: int) -> None:
        self.rows = 0
        self.hist = np.zeros(1, dtype=np.int64)
        self.items = np.zeros(n_items, dtype=bool)

    def add(self, users: np.ndarray, items: np.ndarray) -> None:
        if not len(users):
            return
        self.rows += len(users)
        per_user = np.bincount(users - users.min())
        h = np.bincount(per_user[per_user > 0])
        if len(h) > len(self.hist):
            h[: len(self.hist)] += self.hist
            self.hist = h
        else:
            self.hist[: len(h)] += h
        self.items[items] = True

    def stats(self, name: str) -> dict[str, Any]:
        """Exactly `scalerec.data.build.card.step_stats` of the concatenated rows (quantiles and the mean
        do not depend on the order of the per-user counts; their integer sums are exact)."""
        from scalerec.data.build.card import counts_stats

        return counts_stats(name, np.repeat(np.arange(len(self.hist)), self.hist), int(self.items.sum()))


def sink_parquet(parts: list[Path], dest: Path, schema: dict[str, Any]) -> None:
    """Concatenate per-shard IPC files, in order, into one Parquet file (polars streaming engine:
    bounded memory, all cores), in row groups of `ROW_GROUP` rows."""
    import polars as pl

    if not parts:
        pl.DataFrame(schema=schema).write_parquet(dest)
        return
    frame = pl.concat([pl.scan_ipc(p) for p in parts]).select([pl.col(c).cast(t) for c, t in schema.items()])
    frame.sink_parquet(dest, row_group_size=ROW_GROUP, engine="streaming")


INTER_SCHEMA = {"user_id": "Int32", "item_id": "Int32", "timestamp": "Int64", "rating": "Float32"}


def _schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    import polars as pl

    inter = {c: getattr(pl, t) for c, t in INTER_SCHEMA.items()}
    return inter, {"user_id": pl.Int32, "user_key": pl.String}


def parquet_content_hash(path: Path) -> str:
    """`card.content_hash` of an interactions.parquet, one column and row group at a time."""
    import pyarrow.parquet as pq

    h = hashlib.sha256()
    pf = pq.ParquetFile(str(path))
    for col in ("user_id", "item_id", "timestamp"):
        for batch in pf.iter_batches(batch_size=ROW_GROUP, columns=[col]):
            h.update(np.ascontiguousarray(batch.column(0).to_numpy()).tobytes())
    return h.hexdigest()[:16]


def _ranked_users(sw: ShardWriter, s: int) -> Any:
    """`uh, u, user_key` of shard `s`: users ranked by (hash, key), as `user_hash_order` ranks them."""
    import polars as pl

    from scalerec.errors import UserError

    df = sw.read("users", s).unique("uh")
    if not sw.user_map and df["user_key"].n_unique() != len(df):
        raise UserError("64-bit hash collision among user_keys; rerun is not expected to help, please report")
    return df.sort("h", "user_key").with_columns(pl.int_range(0, pl.len(), dtype=pl.Int32).alias("u"))


def prepare_sharded(
    cfg: PrepareConfig, sw: ShardWriter, meta: Any | None, excluded: list[str] | None, tmp: Path, card: dict
) -> None:
    """Run the filters, dense ids, dataset files and subsets shard by shard; fills `card` in place."""
    import polars as pl

    sw.close()
    items = encode_items(sw.items.frame())
    card["source"]["rows_parsed"] = sw.n
    n_codes = len(items)
    by_hash = items.sort("ih")
    ih_sorted, i_of_hash = by_hash["ih"].to_numpy(), by_hash["i"].to_numpy()
    del by_hash
    flags = item_filter(items, meta)
    del items
    sums: dict[str, StepSum] = {}
    dropped = card["dropped"]

    def record(step: str, df: Any, reason: str | None = None, n: int = 0) -> None:
        sums.setdefault(step, StepSum(n_codes)).add(df["u"].to_numpy(), df["i"].to_numpy())
        if reason:
            dropped[reason] = dropped.get(reason, 0) + int(n)

    shards = [s for s in range(sw.n_shards) if sw.path("rows", s).exists()]
    counts = np.zeros(n_codes, dtype=np.int64)
    for s in shards:
        rows, users = sw.read("rows", s), _ranked_users(sw, s)
        rows = rows.join(users.select("uh", "u"), on="uh")
        ih = rows["ih"].to_numpy()
        order = np.argsort(ih)  # sorted needles: searchsorted walks the item table in order
        i = np.empty(len(ih), dtype=np.int32)
        i[order] = i_of_hash[np.searchsorted(ih_sorted, ih[order])]
        inter = rows.select("u", pl.Series("i", i, dtype=pl.Int32), "timestamp", "rating", "seq")
        del rows
        record("parse", inter)
        inter = filter_rows(cfg, inter, users.select("u", "user_key"), flags, excluded, record)
        counts += np.bincount(inter["i"].to_numpy(), minlength=n_codes)
        inter.write_ipc(sw.path("kept", s), compression="uncompressed")
        users.select("u", "user_key").write_ipc(sw.path("keys", s), compression="uncompressed")
    last = sums[next(reversed(sums))] if sums else StepSum(n_codes)
    if cfg.k_core > 0:
        before = n = last.rows
        while True:  # the rounds of `etl._k_core`: item counts are global, users are per shard
            last, new_counts = StepSum(n_codes), np.zeros(n_codes, dtype=np.int64)
            keep = counts >= cfg.k_core
            for s in shards:
                inter = _read_ipc(sw.path("kept", s))
                inter = inter.filter(pl.Series(keep[inter["i"].to_numpy()]))
                inter = inter.filter(pl.len().over("u") >= cfg.k_core)
                last.add(inter["u"].to_numpy(), inter["i"].to_numpy())
                new_counts += np.bincount(inter["i"].to_numpy(), minlength=n_codes)
                inter.write_ipc(sw.path("kept", s), compression="uncompressed")
            if last.rows == n:
                break
            n, counts = last.rows, new_counts
        sums["k_core"] = last
        dropped["below_k_core"] = dropped.get("below_k_core", 0) + int(before - last.rows)
    card["steps"].extend(sm.stats(name) for name, sm in sums.items())

    # dense ids: items from the global survivors, users by shard offset + rank inside the shard
    item_id_of = np.cumsum(last.items).astype(np.int32)
    codes = np.flatnonzero(last.items)
    i_map = pl.DataFrame(
        {"i": codes.astype(np.int32), "item_id": np.arange(1, len(codes) + 1, dtype=np.int32)}
    )
    items_out = items_frame(i_map, flags)
    del flags
    labels = sorted(cfg.subsets, key=parse_size)
    subs = {lab: {"size": parse_size(lab), "k": None, "sum": StepSum(len(codes) + 1)} for lab in labels}
    offset = total = 0
    for s in shards:
        inter = _read_ipc(sw.path("kept", s)).sort("u", "timestamp", "seq")
        sw.path("kept", s).unlink()
        keys = _read_ipc(sw.path("keys", s))
        sw.path("keys", s).unlink()
        uniq, inv, per_user = np.unique(inter["u"].to_numpy(), return_inverse=True, return_counts=True)
        out = pl.DataFrame(
            {
                "user_id": (offset + 1 + inv).astype(np.int32),
                "item_id": item_id_of[inter["i"].to_numpy()],
                "timestamp": inter["timestamp"].cast(pl.Int64),
                "rating": inter["rating"].cast(pl.Float32),
            }
        )
        del inter
        users_out = (
            pl.DataFrame(
                {"u": uniq.astype(np.int32), "user_id": np.arange(offset + 1, offset + len(uniq) + 1)}
            )
            .join(keys, on="u")
            .sort("user_id")
            .select(pl.col("user_id").cast(pl.Int32), "user_key")
        )
        out.write_ipc(sw.path("out", s), compression="uncompressed")
        users_out.write_ipc(sw.path("outkeys", s), compression="uncompressed")
        cum = total + np.cumsum(per_user)
        for sub in subs.values():  # `subsets.prefix_users`, one shard at a time
            if sub["k"] is not None:
                continue
            if len(cum) and cum[-1] >= sub["size"]:
                sub["k"] = offset + int(np.searchsorted(cum, sub["size"])) + 1
                part = out.filter(pl.col("user_id") <= sub["k"])
            else:
                part = out
            sub["sum"].add(part["user_id"].to_numpy(), part["item_id"].to_numpy())
        offset += len(uniq)
        total += len(out)
    inter_schema, users_schema = _schemas()
    done = [s for s in shards if sw.path("out", s).exists()]
    sink_parquet([sw.path("out", s) for s in done], tmp / "interactions.parquet", inter_schema)
    sink_parquet([sw.path("outkeys", s) for s in done], tmp / "users.parquet", users_schema)
    write_items(tmp, items_out)
    card.update(n_users=offset, n_items=len(items_out), n_interactions=total)
    card["subsets"] = _write_subsets(sw, tmp, shards, subs, items_out, total, card)
    card["dataset_hash"] = parquet_content_hash(tmp / "interactions.parquet")


def _write_subsets(
    sw: ShardWriter, tmp: Path, shards: list[int], subs: dict, items_out: Any, total: int, parent: dict
) -> list[dict[str, Any]]:
    """`scalerec.data.build.subsets.write_subsets`, reading the shards of each user prefix."""
    import polars as pl

    from scalerec.data.build.card import write_card

    inter_schema, users_schema = _schemas()
    rows = []
    for label, sub in subs.items():
        k = sub["k"]
        if k is None or not total:
            rows.append(
                {
                    "label": label,
                    "size": sub["size"],
                    "skipped": f"dataset has only {total:,} interactions",
                    "n_users": 0,
                    "n_items": 0,
                    "n_interactions": 0,
                }
            )
            continue
        seen = sub["sum"].items  # indexed by item_id (0 unused)
        new_id = np.cumsum(seen).astype(np.int32)
        sub_dir = tmp / "subsets" / label
        sub_dir.mkdir(parents=True)
        parts, n_users, n_rows = [], 0, 0
        for s in shards:
            out = _read_ipc(sw.path("out", s))
            if not len(out):
                continue
            if out["user_id"][0] > k:
                break
            out = out.filter(pl.col("user_id") <= k)
            out = out.with_columns(pl.Series("item_id", new_id[out["item_id"].to_numpy()]))
            keys = _read_ipc(sw.path("outkeys", s)).filter(pl.col("user_id") <= k)
            out.write_ipc(sw.path(f"sub{label}", s), compression="uncompressed")
            keys.write_ipc(sw.path(f"subkeys{label}", s), compression="uncompressed")
            parts.append(s)
            n_users, n_rows = n_users + len(keys), n_rows + len(out)
        sink_parquet(
            [sw.path(f"sub{label}", s) for s in parts], sub_dir / "interactions.parquet", inter_schema
        )
        sink_parquet([sw.path(f"subkeys{label}", s) for s in parts], sub_dir / "users.parquet", users_schema)
        for s in parts:
            sw.path(f"sub{label}", s).unlink()
            sw.path(f"subkeys{label}", s).unlink()
        sub_items = items_out.filter(pl.Series(seen[items_out["item_id"].to_numpy()]))
        sub_items = sub_items.with_columns(pl.Series("item_id", new_id[sub_items["item_id"].to_numpy()]))
        write_items(sub_dir, sub_items)
        row = {
            "label": label,
            "size": sub["size"],
            "n_users": n_users,
            "n_items": len(sub_items),
            "n_interactions": n_rows,
        }
        card = {
            **{k2: v for k2, v in parent.items() if k2 not in ("subsets",)},
            **row,
            "name": f"{parent.get('name', '')}/{label}",
            "parent": parent.get("name"),
            "steps": [*parent["steps"], sub["sum"].stats(f"subset_{label}")],
        }
        card["dataset_hash"] = parquet_content_hash(sub_dir / "interactions.parquet")
        write_card(sub_dir, card)
        rows.append(row)
    return rows
