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
dense ids, sorted rows appended to `interactions.parquet`; subsets: the one writer of
`subsets.py`, reading the shards of each user prefix. Everything lives under the output's
temporary dir and is removed before the rename.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl
import pyarrow as pa

from scalerec.data.build.card import StepSum
from scalerec.data.build.config import PrepareConfig
from scalerec.data.build.items import write_items_table
from scalerec.data.build.output import INTER_SCHEMA, USERS_SCHEMA, parquet_content_hash, sink_parquet
from scalerec.data.build.rows import ROW_COLUMNS, KeyTable, Staged, encode_items, stable_hash64
from scalerec.data.build.steps import ItemFilter, filter_rows, item_filter, with_item_domain
from scalerec.data.build.subsets import Part, write_subsets
from scalerec.errors import UserError

if TYPE_CHECKING:
    from polars import DataFrame, Series

    from scalerec.data.ingest.meta import MetaTable


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

    def _write(self, kind: str, shard: int, df: DataFrame) -> None:
        table = df.to_arrow()
        entry = self._writers.get((kind, shard))
        if entry is None:
            sink = pa.OSFile(str(self.path(kind, shard)), "wb")
            entry = self._writers[(kind, shard)] = (sink, pa.ipc.new_stream(sink, table.schema), table.schema)
        if table.schema != entry[2]:
            table = table.cast(entry[2])
        entry[1].write_table(table)

    def shard_of(self, user_keys: Series) -> tuple[np.ndarray, np.ndarray]:
        h = stable_hash64(user_keys, self.seed)
        if self.bits == 0:
            return h, np.zeros(len(h), dtype=np.int32)
        return h, (h >> np.uint64(64 - self.bits)).astype(np.int32)

    def _shard_users(self, users: DataFrame) -> DataFrame:
        """`uh, user_key, h, shard` for distinct users `uh, user_key` (keys mapped first)."""
        if self.user_map:
            users = users.with_columns(pl.col("user_key").replace(self.user_map))
        h, shard = self.shard_of(users["user_key"])
        return users.with_columns(pl.Series("h", h), pl.Series("shard", shard))

    def _add(self, rows: DataFrame, users: DataFrame) -> None:
        rows = rows.join(users.select("uh", "shard"), on="uh")
        self._write_rows(rows)
        for (s,), part in users.partition_by("shard", as_dict=True).items():
            self._write("users", int(s), part.select("uh", "user_key", "h"))

    def _write_rows(self, rows: DataFrame) -> None:
        for (s,), part in rows.partition_by("shard", as_dict=True).items():
            self._write("rows", int(s), part.select(*ROW_COLUMNS))
        self.n += len(rows)

    def add(self, block: DataFrame) -> None:
        """One parsed block (`rows.parsed_blocks`)."""
        self.items.add(block)
        self._add(block.select(*ROW_COLUMNS), self._shard_users(block.select("uh", "user_key").unique("uh")))

    def take(self, staged: Staged) -> None:
        """Everything parsed so far in memory, when the row threshold is crossed (block by block,
        so the move needs no second copy of the rows)."""
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

    def read(self, kind: str, shard: int) -> DataFrame | None:
        """One shard's stream as a DataFrame (None if the shard got no rows); the file is removed."""
        path = self.path(kind, shard)
        if not path.exists():
            return None
        with pa.OSFile(str(path), "rb") as src:
            table = pa.ipc.open_stream(src).read_all()
        path.unlink()
        return cast("DataFrame", pl.from_arrow(table))  # a Table always converts to a DataFrame


def _read_ipc(path: Path) -> DataFrame:
    """An IPC file copied into memory (never memory-mapped: the k-core rounds rewrite it in place)."""
    with pa.OSFile(str(path), "rb") as src:
        return cast("DataFrame", pl.from_arrow(pa.ipc.open_file(src).read_all()))  # Table → DataFrame


def _read_present(sw: ShardWriter, kind: str, s: int) -> DataFrame:
    """`sw.read` of a shard that must have been written (it holds rows, so it holds users)."""
    df = sw.read(kind, s)
    if df is None:
        raise RuntimeError(f"shard {s} has no {kind} file; its rows were staged but never written")
    return df


def _ranked_users(sw: ShardWriter, s: int) -> DataFrame:
    """`uh, u, user_key` of shard `s`: users ranked by (hash, key), as `user_hash_order` ranks them."""
    df = _read_present(sw, "users", s).unique("uh")
    if not sw.user_map and df["user_key"].n_unique() != len(df):
        raise UserError("64-bit hash collision among user_keys; rerun is not expected to help, please report")
    return df.sort("h", "user_key").with_columns(pl.int_range(0, pl.len(), dtype=pl.Int32).alias("u"))


class ShardSteps:
    """The per-step counters of the card, summed over shards (`StepSum` per step)."""

    def __init__(self, n_codes: int, dropped: dict[str, int]) -> None:
        self.n_codes, self.dropped = n_codes, dropped
        self.sums: dict[str, StepSum] = {}

    def record(self, step: str, df: DataFrame, reason: str | None = None, n: int = 0) -> None:
        self.sums.setdefault(step, StepSum(self.n_codes)).add(df["u"].to_numpy(), df["i"].to_numpy())
        if reason:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(n)

    def last(self) -> StepSum:
        return self.sums[next(reversed(self.sums))] if self.sums else StepSum(self.n_codes)


def _filter_shards(
    cfg: PrepareConfig,
    sw: ShardWriter,
    shards: list[int],
    item_codes: tuple[np.ndarray, np.ndarray],
    flags: ItemFilter,
    excluded: list[str] | None,
    steps: ShardSteps,
) -> np.ndarray:
    """Codes and row filters per shard (kept rows → `kept-*`, keys → `keys-*`); item counts."""
    ih_sorted, i_of_hash = item_codes
    counts = np.zeros(steps.n_codes, dtype=np.int64)
    for s in shards:
        rows, users = _read_present(sw, "rows", s), _ranked_users(sw, s)
        rows = rows.join(users.select("uh", "u"), on="uh")
        ih = rows["ih"].to_numpy()
        order = np.argsort(ih)  # sorted needles: searchsorted walks the item table in order
        i = np.empty(len(ih), dtype=np.int32)
        i[order] = i_of_hash[np.searchsorted(ih_sorted, ih[order])]
        inter = rows.select("u", pl.Series("i", i, dtype=pl.Int32), "timestamp", "rating", "seq")
        del rows
        steps.record("parse", inter)
        inter = filter_rows(cfg, inter, users.select("u", "user_key"), flags, excluded, steps.record)
        counts += np.bincount(inter["i"].to_numpy(), minlength=steps.n_codes)
        inter.write_ipc(sw.path("kept", s), compression="uncompressed")
        users.select("u", "user_key").write_ipc(sw.path("keys", s), compression="uncompressed")
    return counts


def _k_core_shards(k: int, sw: ShardWriter, shards: list[int], counts: np.ndarray, steps: ShardSteps) -> None:
    """The rounds of `steps.k_core`: item counts are global, users are per shard."""
    before = n = steps.last().rows
    while True:
        last, new_counts = StepSum(steps.n_codes), np.zeros(steps.n_codes, dtype=np.int64)
        keep = counts >= k
        for s in shards:
            inter = _read_ipc(sw.path("kept", s))
            inter = inter.filter(pl.Series(keep[inter["i"].to_numpy()]))
            inter = inter.filter(pl.len().over("u") >= k)
            last.add(inter["u"].to_numpy(), inter["i"].to_numpy())
            new_counts += np.bincount(inter["i"].to_numpy(), minlength=steps.n_codes)
            inter.write_ipc(sw.path("kept", s), compression="uncompressed")
        if last.rows == n:
            break
        n, counts = last.rows, new_counts
    steps.sums["k_core"] = last
    steps.dropped["below_k_core"] = steps.dropped.get("below_k_core", 0) + int(before - last.rows)


def _dense_shards(
    sw: ShardWriter, shards: list[int], item_id_of: np.ndarray, domains: DataFrame | None
) -> int:
    """Dense ids per shard (users: offset + rank inside the shard) → `out-*`/`outkeys-*`; users."""
    offset = 0
    for s in shards:
        inter = _read_ipc(sw.path("kept", s)).sort("u", "timestamp", "seq")
        sw.path("kept", s).unlink()
        keys = _read_ipc(sw.path("keys", s))
        sw.path("keys", s).unlink()
        uniq, inv = np.unique(inter["u"].to_numpy(), return_inverse=True)
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
        with_item_domain(out, domains).write_ipc(sw.path("out", s), compression="uncompressed")
        users_out.write_ipc(sw.path("outkeys", s), compression="uncompressed")
        offset += len(uniq)
    return offset


def _shard_part(sw: ShardWriter, s: int) -> Callable[[], tuple[DataFrame, DataFrame]]:
    return lambda: (_read_ipc(sw.path("out", s)), _read_ipc(sw.path("outkeys", s)))


def prepare_sharded(
    cfg: PrepareConfig,
    sw: ShardWriter,
    meta: MetaTable | None,
    excluded: list[str] | None,
    tmp: Path,
    card: dict[str, Any],
) -> None:
    """Run the filters, dense ids, dataset files and subsets shard by shard; fills `card` in place."""
    sw.close()
    items = encode_items(sw.items.release())
    card["source"]["rows_parsed"] = sw.n
    by_hash = items.sort("ih")
    item_codes = (by_hash["ih"].to_numpy(), by_hash["i"].to_numpy())
    del by_hash
    flags = item_filter(items, meta, cfg.title_rules()[1])
    steps = ShardSteps(len(items), card["dropped"])
    del items
    shards = [s for s in range(sw.n_shards) if sw.path("rows", s).exists()]
    counts = _filter_shards(cfg, sw, shards, item_codes, flags, excluded, steps)
    if cfg.k_core > 0:
        _k_core_shards(cfg.k_core, sw, shards, counts, steps)
    card["steps"].extend(sm.stats(name) for name, sm in steps.sums.items())
    # dense ids: items from the global survivors, users by shard offset + rank inside the shard
    survivors = steps.last().items
    codes = np.flatnonzero(survivors)
    domains = write_items_table(
        tmp, codes, flags.info, flags.meta, tmp / "_items_text", pooled=bool(cfg.domains)
    )
    del flags
    n_users = _dense_shards(sw, shards, np.cumsum(survivors).astype(np.int32), domains)
    done = [s for s in shards if sw.path("out", s).exists()]
    sink_parquet([sw.path("out", s) for s in done], tmp / "interactions.parquet", INTER_SCHEMA)
    sink_parquet([sw.path("outkeys", s) for s in done], tmp / "users.parquet", USERS_SCHEMA)
    card.update(n_users=n_users, n_items=len(codes), n_interactions=steps.last().rows)
    parts: list[Part] = [_shard_part(sw, s) for s in done]
    card["subsets"] = write_subsets(tmp, parts, len(codes), cfg.subsets, card)
    card["dataset_hash"] = parquet_content_hash(tmp / "interactions.parquet")
