"""Raw dumps → a clean dataset dir (Parquet + card), in bounded memory and without silent loss.

Pipeline (each step counted in the card): parse (strict or lenient) → stage as Parquet →
string keys to integer codes → dedupe (user, item, timestamp) → join metadata, drop items without
metadata or usable title → exclude users of named downstream datasets → min interactions per
user and optional iterative k-core → dense ids (users in seeded-hash order, so nested subsets are
prefixes) → sort by (user, time, arrival) → write → nested subsets. Strings are touched once, at
encoding; every later step works on int columns, which is what keeps a 23M-row dump in a few GB.
The whole output is built under a temporary name and renamed at the end (`scalerec.io.atomic_dir`).

Above `shard_above_rows` parsed rows the rows go to disk instead, partitioned by the seeded user
hash, and every per-user step runs one shard at a time (`scalerec.data.shards`): memory then
depends on the shard size and the item table, not on the number of ratings. Both paths write
the same files and the same card.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from scalerec.data.card import FORMAT_VERSION, content_hash, source_files, step_stats, write_card
from scalerec.data.parse import ParseLog
from scalerec.data.sources import SOURCES, read_interactions
from scalerec.data.subsets import parse_size, write_subsets
from scalerec.errors import UserError
from scalerec.io import atomic_dir


@dataclass
class PrepareConfig:
    """Everything `scalerec data prepare` needs; all of it is recorded in the card."""

    source: Literal["amazon2014", "amazon2018", "amazon2023", "movielens", "recbole", "s3rec"] = "amazon2018"
    """Raw format of the input files."""
    ratings: list[Path] = field(default_factory=list)
    """Interaction files (ratings CSV, reviews JSON lines, u.data, .inter, S3Rec sequences)."""
    meta: list[Path] = field(default_factory=list)
    """Item tables; several are merged on the item id, later ones filling empty fields."""
    out: Path = Path("data/dataset")
    """Output dataset dir (replaced atomically)."""
    name: str = ""
    """Dataset name for the card (default: the output dir name)."""
    mode: Literal["lenient", "strict"] = "lenient"
    """strict: stop at the first bad line; lenient: skip and count it per reason."""
    dedupe: bool = True
    """Drop repeated (user, item, timestamp) rows."""
    require_metadata: bool = True
    """Drop interactions whose item has no metadata row (needs `meta`)."""
    require_title: bool = True
    """Drop interactions whose item has no usable title (empty, HTML or script junk)."""
    min_user_interactions: int = field(default=5, metadata={"range": "[1, inf)"})
    """Drop users with fewer interactions (after the filters above)."""
    k_core: int = field(default=0, metadata={"range": "[0, inf)"})
    """If > 0, iteratively keep users and items with >= k_core interactions."""
    exclude_users: list[Path] = field(default_factory=list)
    """Dataset dirs, P5 datamaps.json or key lists whose users are removed (downstream overlap)."""
    subsets: list[str] = field(default_factory=list)
    """Nested subset sizes in interactions, e.g. 100K, 1M, 10M."""
    seed: int = field(default=0, metadata={"range": "[0, inf)"})
    """Seed of the user-order hash (subset membership and user ids)."""
    shard_above_rows: int = field(default=8_000_000, metadata={"range": "[0, inf)"})
    """Parsed rows above which rows spill to user-hash shards on disk and are processed one shard
    at a time (bounded memory; same output). 0: always; a huge value: never."""
    shards: int = field(default=64, metadata={"range": "[1, 1024]"})
    """Number of user-hash shards of the on-disk path (a power of two, at most 1024)."""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        self.ratings = [Path(p) for p in self.ratings]
        self.meta = [Path(p) for p in self.meta]
        self.out = Path(self.out)
        if self.min_user_interactions < 1 or self.k_core < 0:
            raise ValueError("min_user_interactions must be >= 1 and k_core >= 0")
        for s in self.subsets:
            parse_size(s)
        if self.shard_above_rows < 0 or not (
            1 <= self.shards <= 1024 and self.shards & (self.shards - 1) == 0
        ):
            raise ValueError("shard_above_rows must be >= 0 and shards a power of two in 1..1024")


_KEY_SEED = 0x5CA1E


ROW_COLUMNS = ("uh", "ih", "timestamp", "rating", "seq")


def _blocks(cfg: PrepareConfig, log: ParseLog) -> Iterator[Any]:
    """Parsed interaction blocks with 64-bit key hashes `uh, ih` and the arrival index `seq`.

    `seq` is the global arrival index (stable tiebreak; the timestamp of sources without one).
    """
    import polars as pl

    seq = 0
    for path in cfg.ratings:
        for block in read_interactions(cfg.source, path, log):
            n = len(block)
            yield block.with_columns(
                pl.col("user_key").hash(_KEY_SEED).alias("uh"),
                pl.col("item_key").hash(_KEY_SEED).alias("ih"),
                pl.int_range(seq, seq + n, dtype=pl.Int64).alias("seq"),
            ).with_columns(pl.col("timestamp").fill_null(pl.col("seq")))
            seq += n


class KeyTable:
    """Distinct (hash, key) pairs seen so far, compacted as they grow.

    Compacted when the rows added since the last compaction reach the compacted size (at least
    1M): a few compactions in all, and never more than about twice the distinct keys in memory.
    """

    def __init__(self, hash_col: str, key_col: str) -> None:
        self.cols = (hash_col, key_col)
        self.parts: list[Any] = []
        self.base = self.pending = 0

    def add(self, df: Any) -> None:
        import polars as pl

        part = df.select(*self.cols).unique(self.cols[0])
        self.parts.append(part)
        self.pending += len(part)
        if self.pending >= max(self.base, 1 << 20):
            self.parts = [pl.concat(self.parts).unique(self.cols[0])]
            self.base, self.pending = len(self.parts[0]), 0

    def frame(self) -> Any:
        import polars as pl

        h, k = self.cols
        if not self.parts:
            return pl.DataFrame(schema={h: pl.UInt64, k: pl.String})
        df = pl.concat(self.parts).unique(h)
        if df[k].n_unique() != len(df):
            raise UserError(f"64-bit hash collision among {k}s; rerun is not expected to help, please report")
        return df


class Staged:
    """Int rows `uh, ih, timestamp, rating, seq` in memory plus the user and item key tables.

    Strings are replaced at once by 64-bit key hashes, so memory stays near rows x 32 bytes
    plus the distinct keys.
    """

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.users, self.items = KeyTable("uh", "user_key"), KeyTable("ih", "item_key")
        self.n = 0

    def add(self, block: Any) -> None:
        self.rows.append(block.select(*ROW_COLUMNS))
        self.users.add(block)
        self.items.add(block)
        self.n += len(block)

    def frame(self) -> Any:
        import polars as pl

        empty = {
            "uh": pl.UInt64,
            "ih": pl.UInt64,
            "timestamp": pl.Int64,
            "rating": pl.Float32,
            "seq": pl.Int64,
        }
        return pl.concat(self.rows) if self.rows else pl.DataFrame(schema=empty)


def stable_hash64(keys: Any, seed: int) -> np.ndarray:
    """Seeded 64-bit hash of each string, identical on every platform and library version.

    FNV-1a over the UTF-8 bytes (vectorized over keys, one pass per byte position) followed by
    the splitmix64 finalizer; all arithmetic is wrapping uint64. `keys`: Polars String Series.
    """
    import pyarrow as pa

    arr = keys.to_arrow()
    arr = (arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr).cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if len(arr) else np.zeros(0, np.uint8)
    start, lens = offsets[:-1], np.diff(offsets)
    with np.errstate(over="ignore"):
        h = np.full(len(arr), 0xCBF29CE484222325, dtype=np.uint64) ^ np.uint64(seed & (2**64 - 1))
        by_len = np.argsort(-lens, kind="stable")  # keys longer than j are a prefix of by_len
        sorted_lens = lens[by_len]
        for j in range(int(lens.max()) if len(lens) else 0):
            idx = by_len[: int(np.searchsorted(-sorted_lens, -j, side="left"))]
            h[idx] = (h[idx] ^ data[start[idx] + j]) * np.uint64(0x100000001B3)
        h ^= lens.astype(np.uint64)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def user_hash_order(keys: Any, seed: int) -> np.ndarray:
    """Rank of each key (Polars String Series) in the seeded-hash order (ties: by key)."""
    import polars as pl

    h = stable_hash64(keys, seed)
    frame = pl.DataFrame({"h": h, "k": keys, "pos": np.arange(len(keys))}).sort("h", "k")
    rank = np.empty(len(keys), dtype=np.int64)
    rank[frame["pos"].to_numpy()] = np.arange(len(keys))
    return rank


def user_key_map(cfg: PrepareConfig) -> dict[str, str]:
    """S3Rec user ints → the original reviewerIDs when a P5 `datamaps.json` is among the item
    tables, so downstream-user exclusion works across datasets (empty otherwise)."""
    from scalerec.data.sources_bench import datamaps_users

    mapping: dict[str, str] = {}
    for p in cfg.meta:
        if "datamaps" in Path(p).name:
            mapping.update(datamaps_users(Path(p)))
    return mapping


def encode_items(items: Any) -> Any:
    """Item key table → int32 codes `i` in (length, key) order."""
    import polars as pl

    items = items.sort(pl.col("item_key").str.len_bytes(), "item_key")
    return items.with_columns(pl.int_range(0, pl.len(), dtype=pl.Int32).alias("i"))


def _encode(inter: Any, users: Any, items: Any, seed: int) -> tuple[Any, Any]:
    """Hashed keys → int32 codes: users in seeded-hash order, items as `encode_items` numbered them."""
    import polars as pl

    users = users.with_columns(pl.Series("u", user_hash_order(users["user_key"], seed), dtype=pl.Int32))
    inter = (
        inter.lazy()
        .join(users.lazy().select("uh", "u"), on="uh")
        .join(items.lazy().select("ih", "i"), on="ih")
        .select("u", "i", "timestamp", "rating", "seq")
        .collect()
    )
    return inter, users.drop("uh")


def _dedupe(inter: Any) -> Any:
    """Drop repeated (user, item, timestamp) rows, keeping the earliest arrival.

    Sort-based (neighbours compared after sorting) instead of a hash `unique` over three
    columns, which costs ~5x more peak memory on 20M+ rows.
    """
    import polars as pl

    inter = inter.sort("u", "i", "timestamp", "seq")
    same = (
        (pl.col("u") == pl.col("u").shift())
        & (pl.col("i") == pl.col("i").shift())
        & (pl.col("timestamp") == pl.col("timestamp").shift())
    )
    return inter.filter(~same.fill_null(False))


def _k_core(inter: Any, k_user: int, k_item: int) -> Any:
    import polars as pl

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

    info: Any
    no_meta: np.ndarray | None = None
    issue: dict[str, np.ndarray] = field(default_factory=dict)
    meta: Any | None = None


def item_filter(items: Any, meta: Any | None) -> ItemFilter:
    """Join the encoded item table with the metadata (`scalerec.data.meta.MetaTable`) and flag
    items per drop reason."""
    import polars as pl

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
    return ItemFilter(info, no_meta, issue, meta)


def _drop_items(inter: Any, bad: np.ndarray) -> Any:
    import polars as pl

    return inter.filter(pl.Series(~bad[inter["i"].to_numpy()]))


def filter_rows(
    cfg: PrepareConfig, inter: Any, users: Any, flags: ItemFilter, excluded: list[str] | None, record: Any
) -> Any:
    """Dedupe, metadata/title, exclusions, min interactions per user; `record(step, df, reason, n)`.

    Works on all rows or on one user shard alike: every step is per row, per item (through
    `flags`) or per user. `users`: `u, user_key` of the users in `inter`.
    """
    import polars as pl

    if cfg.dedupe:
        before = len(inter)
        inter = _dedupe(inter)
        record("dedupe", inter, "duplicate", before - len(inter))
    if flags.no_meta is not None:
        if cfg.require_metadata:
            before = len(inter)
            inter = _drop_items(inter, flags.no_meta)
            record("join_metadata", inter, "no_metadata", before - len(inter))
        if cfg.require_title:
            for reason in ("junk_title", "empty_title"):
                before = len(inter)
                inter = _drop_items(inter, flags.issue[reason])
                record(f"drop_{reason}", inter, reason, before - len(inter))
    if excluded is not None:
        excl = users.filter(pl.col("user_key").is_in(excluded)).select("u")
        before = len(inter)
        inter = inter.join(excl, on="u", how="anti")
        record("exclude_users", inter, "excluded_users", before - len(inter))
    before = len(inter)
    inter = inter.filter(pl.len().over("u") >= cfg.min_user_interactions)
    record("min_user_interactions", inter, "below_min_interactions", before - len(inter))
    return inter


def items_frame(i_map: Any, flags: ItemFilter) -> Any:
    """`i_map` (`i`, `item_id`) + item info → the items.parquet frame, sorted by item_id; the metadata
    text is read for these items only."""
    import polars as pl

    info = i_map.join(flags.info, on="i").sort("item_id")
    if flags.meta is not None:
        text = flags.meta.text_by_id(info.filter(pl.col("_row").is_not_null()))
        if len(text) == len(info):  # every item has metadata: same ids in the same order
            info = info.hstack(text.drop("item_id"))
        else:
            info = info.join(text, on="item_id", how="left", maintain_order="left")
        del text
    return info.select(
        "item_id",
        pl.coalesce("item_key_out", "item_key").alias("item_key")
        if "item_key_out" in info.columns
        else "item_key",
        pl.col("title").fill_null("") if "title" in info.columns else pl.lit("").alias("title"),
        pl.col("brand").fill_null("") if "brand" in info.columns else pl.lit("").alias("brand"),
        pl.col("categories").fill_null([])
        if "categories" in info.columns
        else pl.lit([], pl.List(pl.String)).alias("categories"),
    )


def _densify(inter: Any, users: Any, flags: ItemFilter) -> tuple[Any, Any, Any]:
    """Dense ids from 1 (users keep hash order, items keep key order); sorted interactions."""
    import polars as pl

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
    return out, users_out, items_frame(i_map, flags)


def write_items(dest: Path, items: Any) -> None:
    import polars as pl

    items.with_columns(
        pl.col("item_id").cast(pl.Int32), pl.col("categories").cast(pl.List(pl.String))
    ).write_parquet(dest / "items.parquet")


def write_dataset(dest: Path, inter: Any, users: Any, items: Any) -> None:
    """The three Parquet files of the dataset-dir contract."""
    import polars as pl

    inter.write_parquet(dest / "interactions.parquet", row_group_size=1 << 20)
    users.with_columns(pl.col("user_id").cast(pl.Int32)).write_parquet(dest / "users.parquet")
    write_items(dest, items)


def _load_meta(cfg: PrepareConfig, log: ParseLog, spill: Path) -> tuple[Any | None, dict[str, int]]:
    """The metadata as a `scalerec.data.meta.MetaTable` (text spilled under `spill`) and its counts."""
    from scalerec.data.meta import read_meta

    if not cfg.meta:
        if cfg.require_metadata and cfg.source.startswith("amazon"):
            raise UserError("no --meta given: pass the metadata file, or set require_metadata=false")
        return None, {}
    meta = read_meta(cfg.source, cfg.meta, log, spill)
    return meta, meta.counts


def prepare(cfg: PrepareConfig) -> dict[str, Any]:
    """Run the pipeline of the module docstring; returns the card (also written to `cfg.out`)."""
    from scalerec.config import to_dict

    if not cfg.ratings:
        raise UserError("no interaction file given (--ratings)")
    for p in [*cfg.ratings, *cfg.meta]:
        if not Path(p).is_file():
            raise UserError(f"input file not found: {p}")
    t0 = time.perf_counter()
    log = ParseLog(cfg.mode)
    steps: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}

    def record(step: str, df: Any, reason: str | None = None, n: int = 0) -> None:
        steps.append(step_stats(step, df["u"].to_numpy(), df["i"].to_numpy(), dense=True))
        if reason:
            dropped[reason] = dropped.get(reason, 0) + int(n)

    with atomic_dir(cfg.out) as tmp:
        staged, sharded = Staged(), None
        blocks = _blocks(cfg, log)
        for block in blocks:
            staged.add(block)
            if staged.n > cfg.shard_above_rows:
                from scalerec.data.shards import ShardWriter

                sharded = ShardWriter(tmp / "_shards", cfg.shards, cfg.seed, user_key_map(cfg))
                sharded.take(staged)
                del staged
                for block in blocks:
                    sharded.add(block)
                break
        n_malformed = log.total
        meta, meta_counts = _load_meta(cfg, log, tmp / "_meta")
        dropped["malformed"] = n_malformed
        excluded = None
        if cfg.exclude_users:
            from scalerec.data.subsets import excluded_keys

            excluded = excluded_keys(cfg.exclude_users)
        card = {
            "format_version": FORMAT_VERSION,
            "name": cfg.name or cfg.out.name,
            "n_users": 0,
            "n_items": 0,
            "n_interactions": 0,
            "source": {
                "format": cfg.source,
                "files": source_files([*cfg.ratings, *cfg.meta]),
                "lines_read": log.lines,
                "rows_parsed": 0,
            },
            "params": to_dict(cfg),
            "steps": steps,
            "dropped": dropped,
            "metadata": meta_counts,
            "parse": {"mode": cfg.mode, "counts": log.counts, "examples": log.examples},
            "split": "leave-one-out at load time (last item test, second-last valid)",
        }
        if sharded is not None:
            from scalerec.data.shards import prepare_sharded

            prepare_sharded(cfg, sharded, meta, excluded, tmp, card)
            shutil.rmtree(tmp / "_shards", ignore_errors=True)
        else:
            inter = staged.frame()
            card["source"]["rows_parsed"] = len(inter)
            users = staged.users.frame()
            items = encode_items(staged.items.frame())
            del staged
            mapping = user_key_map(cfg)
            if mapping:
                users = users.with_columns(users["user_key"].replace(mapping))
            inter, users = _encode(inter, users, items, cfg.seed)
            record("parse", inter)
            flags = item_filter(items, meta)
            inter = filter_rows(cfg, inter, users, flags, excluded, record)
            if cfg.k_core > 0:
                before = len(inter)
                inter = _k_core(inter, cfg.k_core, cfg.k_core)
                record("k_core", inter, "below_k_core", before - len(inter))
            inter, users_out, items_out = _densify(inter, users, flags)
            write_dataset(tmp, inter, users_out, items_out)
            card.update(n_users=len(users_out), n_items=len(items_out), n_interactions=len(inter))
            card["subsets"] = write_subsets(tmp, inter, users_out, items_out, cfg.subsets, card)
            card["dataset_hash"] = content_hash(inter)
        shutil.rmtree(tmp / "_meta", ignore_errors=True)
        card["wall_time_s"] = round(time.perf_counter() - t0, 3)
        card["dataset_hash"] = card.pop("dataset_hash")
        write_card(tmp, card)
    return card
