"""Parsed rows as integers: key hashes, the seeded user order, and the item codes.

Strings are touched once: each parsed block gets 64-bit hashes of its user and item keys, and
the distinct (hash, key) pairs are kept aside (`KeyTable`), so every later step works on int
columns. `stable_hash64` fixes the user order (user ids, shards and nested subsets all follow
it), so it must never change for a given key and seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from scalerec.data.build.config import PrepareConfig
from scalerec.data.ingest.bench import datamaps_users
from scalerec.data.ingest.parse import ParseLog
from scalerec.data.ingest.sources import read_interactions
from scalerec.errors import UserError

if TYPE_CHECKING:
    from polars import DataFrame, Series

MAX_KEY_BYTES = 512
"""Longest user or item key accepted; longer ones are a counted bad line (`key_too_long`)."""
_KEY_SEED = 0x5CA1E


ROW_COLUMNS = ("uh", "ih", "timestamp", "rating", "seq")


def parsed_blocks(cfg: PrepareConfig, log: ParseLog) -> Iterator[DataFrame]:
    """Parsed interaction blocks with 64-bit key hashes `uh, ih` and the arrival index `seq`.

    `seq` is the global arrival index (stable tiebreak; the timestamp of sources without one).
    Keys of a named domain become `<domain>:<key>`. Each file is judged once read
    (`check_readable`): a file that is mostly unreadable stops the run instead of yielding an
    empty or meaningless dataset.
    """
    seq = 0
    for dom in cfg.inputs():
        for path in dom.ratings:
            n_file = 0
            for block in read_interactions(dom.source, path, log, dom.columns):
                block = drop_long_keys(block, path, log)
                if dom.name:
                    prefix = pl.lit(f"{dom.name}:")
                    block = block.with_columns(
                        (prefix + pl.col("user_key")).alias("user_key"),
                        (prefix + pl.col("item_key")).alias("item_key"),
                    )
                n = len(block)
                n_file += n
                yield block.with_columns(
                    pl.col("user_key").hash(_KEY_SEED).alias("uh"),
                    pl.col("item_key").hash(_KEY_SEED).alias("ih"),
                    pl.int_range(seq, seq + n, dtype=pl.Int64).alias("seq"),
                ).with_columns(pl.col("timestamp").fill_null(pl.col("seq")))
                seq += n
            check_readable(path, f"{dom.source} interactions", n_file, log, cfg.max_bad_fraction)


def drop_long_keys(block: DataFrame, path: Path, log: ParseLog) -> DataFrame:
    """Reject rows whose user or item key is longer than `MAX_KEY_BYTES` (`key_too_long`): no real
    id is that long, and hashing cost must not grow with a junk key's length."""
    too_long = (pl.col("user_key").str.len_bytes() > MAX_KEY_BYTES) | (
        pl.col("item_key").str.len_bytes() > MAX_KEY_BYTES
    )
    bad = block.filter(too_long)
    if not len(bad):
        return block
    row = bad.row(0, named=True)
    shown = f"user {row['user_key'][:40]!r}…, item {row['item_key'][:40]!r}…"
    log.bad(path, 0, "key_too_long", shown, n=len(bad))
    return block.filter(~too_long)


def check_readable(path: Path, expected: str, n_ok: int, log: ParseLog, max_bad: float) -> None:
    """Stop (`UserError`) when `path` gave no usable row or more than `max_bad` of its lines were
    bad: it is then not the declared format (or not the file the user meant)."""
    reasons = log.by_file.get(str(path), {})
    bad = sum(reasons.values())
    lines = log.lines.get(str(path)) or bad + n_ok
    if n_ok and bad <= max_bad * lines:
        return
    top = ", ".join(f"{k}: {v:,}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
    what = "no line could" if not n_ok else f"{bad:,} of {lines:,} lines could not"
    raise UserError(
        f"{path}: {what} be read as {expected} ({top or 'empty'}); is this the right file and "
        f"--source? (lenient mode stops above max_bad_fraction={max_bad})"
    )


class KeyTable:
    """Distinct (hash, key) pairs seen so far, compacted as they grow.

    Compacted when the rows added since the last compaction reach the compacted size (at least
    1M): a few compactions in all, and never more than about twice the distinct keys in memory.
    """

    def __init__(self, hash_col: str, key_col: str) -> None:
        self.cols = (hash_col, key_col)
        self.parts: list[DataFrame] = []
        self.base = self.pending = 0
        self.exact = False  # parts is one checked frame of distinct pairs (`compact`)

    def add(self, df: DataFrame) -> None:
        part = df.select(*self.cols).unique(self.cols[0])
        self.exact = False
        self.parts.append(part)
        self.pending += len(part)
        if self.pending >= max(self.base, 1 << 20):
            self.parts = [pl.concat(self.parts).unique(self.cols[0])]
            self.base, self.pending = len(self.parts[0]), 0

    def compact(self) -> None:
        """Hold the distinct pairs once: up to half of the parts can repeat keys of the others,
        which at the full 2018 scale (15M item keys) is worth freeing before the metadata is read."""
        self.parts = [self.frame()]
        self.base, self.pending, self.exact = len(self.parts[0]), 0, True

    def release(self) -> DataFrame:
        """`frame()`, letting go of the parts (the caller then holds the only copy)."""
        df = self.frame()
        self.parts, self.base, self.pending, self.exact = [], 0, 0, False
        return df

    def frame(self) -> DataFrame:
        h, k = self.cols
        if self.exact:
            return self.parts[0]
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
        self.rows: list[DataFrame] = []
        self.users, self.items = KeyTable("uh", "user_key"), KeyTable("ih", "item_key")
        self.n = 0

    def add(self, block: DataFrame) -> None:
        self.rows.append(block.select(*ROW_COLUMNS))
        self.users.add(block)
        self.items.add(block)
        self.n += len(block)

    def release(self) -> tuple[DataFrame, DataFrame, DataFrame]:
        """(rows, users, items) as frames; this object lets go of its parts, so the rows are held once."""
        rows, users, items = self.frame(), self.users.frame(), self.items.frame()
        self.rows, self.users.parts, self.items.parts = [], [], []
        return rows, users, items

    def frame(self) -> DataFrame:
        empty = {
            "uh": pl.UInt64,
            "ih": pl.UInt64,
            "timestamp": pl.Int64,
            "rating": pl.Float32,
            "seq": pl.Int64,
        }
        return pl.concat(self.rows) if self.rows else pl.DataFrame(schema=empty)


def stable_hash64(keys: Series, seed: int) -> np.ndarray:
    """Seeded 64-bit hash of each string, identical on every platform and library version.

    FNV-1a over the UTF-8 bytes (vectorized over keys, one pass per byte position) followed by
    the splitmix64 finalizer; all arithmetic is wrapping uint64. `keys`: Polars String Series.
    The loop runs once per byte position of the longest key, which `drop_long_keys` caps at
    `MAX_KEY_BYTES` (a 1 MB junk key made prepare 45x slower before the cap).
    """
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


def user_hash_order(keys: Series, seed: int) -> np.ndarray:
    """Rank of each key (Polars String Series) in the seeded-hash order (ties: by key)."""
    h = stable_hash64(keys, seed)
    frame = pl.DataFrame({"h": h, "k": keys, "pos": np.arange(len(keys))}).sort("h", "k")
    rank = np.empty(len(keys), dtype=np.int64)
    rank[frame["pos"].to_numpy()] = np.arange(len(keys))
    return rank


def user_key_map(cfg: PrepareConfig) -> dict[str, str]:
    """S3Rec user ints → the original reviewerIDs when a P5 `datamaps.json` is among the item
    tables, so downstream-user exclusion works across datasets (empty otherwise; both sides keep
    the domain prefix of a pooled dataset)."""
    mapping: dict[str, str] = {}
    for dom in cfg.inputs():
        prefix = f"{dom.name}:" if dom.name else ""
        for p in dom.meta:
            if "datamaps" in Path(p).name:
                mapping.update({prefix + k: prefix + v for k, v in datamaps_users(Path(p)).items()})
    return mapping


def encode_items(items: DataFrame) -> DataFrame:
    """Item key table → int32 codes `i` in (length, key) order."""
    items = items.sort(pl.col("item_key").str.len_bytes(), "item_key")
    return items.with_columns(pl.int_range(0, pl.len(), dtype=pl.Int32).alias("i"))


def encode(inter: DataFrame, users: DataFrame, items: DataFrame, seed: int) -> tuple[DataFrame, DataFrame]:
    """Hashed keys → int32 codes: users in seeded-hash order, items as `encode_items` numbered them."""
    users = users.with_columns(pl.Series("u", user_hash_order(users["user_key"], seed), dtype=pl.Int32))
    inter = (
        inter.lazy()
        .join(users.lazy().select("uh", "u"), on="uh")
        .join(items.lazy().select("ih", "i"), on="ih")
        .select("u", "i", "timestamp", "rating", "seq")
        .collect()
    )
    return inter, users.drop("uh")
