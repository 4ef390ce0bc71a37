"""Item metadata in bounded memory: read in chunks, cleaned per chunk, text spilled to Parquet.

The metadata file is read block by block (`META_CHUNK_BYTES` of text, ~200K synthetic or ~20K
real 2018 lines); each block's titles are flagged and cleaned (`scalerec.data.ingest.titles.flag_titles`,
row-local), reduced to its best row per item, and its text columns (`item_key_out, title, brand,
categories`) are appended to Parquet files under the output's temporary dir. What stays in memory is
one compact row per distinct item: `join_key` and one Int64 `_key` that orders rows exactly as
`clean_items` does (usable title first, then the earlier line) and also holds the line index and the
title issue. The text of the items that survive the ETL is read back at the end, by line index, in
item-id ranges (`MetaTable.text_chunks`).

Result and counts equal `clean_items` of the whole table: the best row of an item over all lines is
the best of the per-chunk bests, and every per-row step is row-local.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalerec.data.ingest.parse import CHUNK_BYTES, ParseLog
from scalerec.data.ingest.sources import iter_items, merge_items, read_items
from scalerec.data.ingest.titles import clean_items, flag_titles, meta_columns

META_CHUNK_BYTES = CHUNK_BYTES
"""Bytes of metadata text per chunk (module-level so tests can force many chunks)."""

ISSUES = (None, "junk_title", "empty_title")
"""`title_issue` by the code kept in the low 2 bits of `_key`."""
_ROW_BITS = 38  # line index < 2^38; bit 40: the title has an issue
TEXT_COLUMNS = ("item_key_out", "title", "brand", "categories")


def _text_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "_row": pl.Int64,
        "item_key_out": pl.String,
        "title": pl.String,
        "brand": pl.String,
        "categories": pl.List(pl.String),
    }


def _sort_key(issue: Any, row: Any) -> Any:
    """Polars expr: Int64 ordered by (has issue, row), with row and issue code recoverable."""
    import polars as pl

    return ((issue > 0).cast(pl.Int64) * (1 << (_ROW_BITS + 2)) + row.cast(pl.Int64) * 4 + issue).alias(
        "_key"
    )


def key_row(key: Any) -> Any:
    """Polars expr: the line index (`_row`) of a `_key`."""
    import polars as pl

    return ((key % (1 << (_ROW_BITS + 2))) // 4).cast(pl.Int64).alias("_row")


def key_issue(key: Any) -> Any:
    """Polars expr: the `title_issue` string of a `_key` (null: usable title)."""
    import polars as pl

    code = key % 4
    return (
        pl.when(code == 1)
        .then(pl.lit(ISSUES[1]))
        .when(code == 2)
        .then(pl.lit(ISSUES[2]))
        .otherwise(pl.lit(None, pl.String))
        .alias("title_issue")
    )


def _issue_code() -> Any:
    import polars as pl

    return (
        pl.when(pl.col("title_issue") == ISSUES[1])
        .then(1)
        .when(pl.col("title_issue") == ISSUES[2])
        .then(2)
        .otherwise(0)
        .cast(pl.Int64)
    )


def _best(keys: Any) -> Any:
    """`join_key, _key` → the smallest `_key` per `join_key`."""
    import polars as pl

    return keys.group_by("join_key").agg(pl.col("_key").min())


@dataclass
class MetaTable:
    """One row per distinct item id: `keys` (`join_key, _key`, sorted by `_key`), the card counts,
    and where the cleaned text lives (Parquet `parts` with `_row` + `TEXT_COLUMNS`, or `text`)."""

    keys: Any
    counts: dict[str, int]
    parts: list[Path] = field(default_factory=list)
    text: Any | None = None

    def flags(self) -> Any:
        """`join_key, _row, title_issue` per item (what the item filter joins on)."""
        import polars as pl

        return self.keys.select("join_key", key_row(pl.col("_key")), key_issue(pl.col("_key")))

    def text_of(self, rows: Any) -> Any:
        """`_row` + `TEXT_COLUMNS` of the given line indexes (a frame with column `_row`)."""
        import polars as pl

        need = rows.select(pl.col("_row").cast(pl.Int64)).unique()
        if self.text is not None:
            return self.text.join(need, on="_row", how="semi")
        if not self.parts:
            return pl.DataFrame(schema=_text_schema())
        # one part at a time, eagerly: the streaming engine's buffers cost ~0.2 GiB more at 3M items
        return pl.concat([pl.read_parquet(p).join(need, on="_row", how="semi") for p in self.parts])

    def text_chunks(self, order: Any, bounds: Sequence[int], scratch: Path) -> Iterator[Any]:
        """`item_id` + `TEXT_COLUMNS` of the items of `order` (`_row`, `item_id`; rows unique), one
        frame per item-id range `[bounds[k], bounds[k + 1])`, each sorted by `item_id`.

        Parts are read once, one at a time, and their rows picked by position (both sides sorted by
        line). With several ranges the picked rows are bucketed by range into IPC files under
        `scratch` (a new dir, removed at the end), so memory holds one part or one range, never the
        text of the whole catalog.
        """
        import numpy as np
        import polars as pl

        order = order.select(pl.col("_row").cast(pl.Int64), pl.col("item_id")).sort("_row")
        dtype = order["item_id"].dtype
        if len(bounds) <= 2:
            yield _by_item_id(list(self._picked(order)), dtype)
            return
        scratch.mkdir(parents=True)  # new: removed once the last range is read
        files: list[list[Path]] = [[] for _ in range(len(bounds) - 1)]
        inner = np.asarray(bounds[1:-1])
        for n, piece in enumerate(self._picked(order)):
            bucket = pl.Series("_bucket", np.searchsorted(inner, piece["item_id"].to_numpy(), side="right"))
            for (k,), rows in piece.with_columns(bucket).partition_by("_bucket", as_dict=True).items():
                files[int(k)].append(scratch / f"text-{int(k):05d}-{n:05d}.arrow")
                rows.drop("_bucket").write_ipc(files[int(k)][-1], compression="uncompressed")
        for paths in files:
            yield _by_item_id([pl.read_ipc(p) for p in paths], dtype)
            for p in paths:
                p.unlink()
        scratch.rmdir()

    def _picked(self, order: Any) -> Iterator[Any]:
        """Per text part, in line order: `item_id` + `TEXT_COLUMNS` of its lines that `order`
        (`_row`, `item_id`, sorted by `_row`) asks for."""
        import numpy as np
        import polars as pl

        rows, ids = order["_row"].to_numpy(), order["item_id"]
        source: Any  # the in-memory text frame, or one Parquet part's path
        for source in [self.text] if self.text is not None else self.parts:
            part = source.sort("_row") if self.text is not None else pl.read_parquet(source)
            prow = part["_row"].to_numpy()
            if not len(prow):
                continue
            lo, hi = np.searchsorted(rows, [prow[0], prow[-1] + 1])
            idx = np.searchsorted(prow, rows[lo:hi])
            if not np.array_equal(prow[np.minimum(idx, len(prow) - 1)], rows[lo:hi]):
                raise AssertionError("metadata line asked for is not in its part")
            yield part[idx].select(ids.slice(lo, hi - lo), *TEXT_COLUMNS)
            del part

    def frame(self) -> Any:
        """The whole table exactly as `titles.clean_items` returns it (tests, small data)."""
        import polars as pl

        flags = self.flags()
        return flags.join(self.text_of(flags), on="_row", how="left", maintain_order="left").select(
            "join_key", *TEXT_COLUMNS, "title_issue", pl.lit(True).alias("has_meta")
        )


def _by_item_id(pieces: list[Any], id_dtype: Any) -> Any:
    """Text pieces (`item_id` + `TEXT_COLUMNS`) as one frame sorted by `item_id`."""
    import polars as pl

    if not pieces:
        return pl.DataFrame(
            schema={"item_id": id_dtype, **{c: t for c, t in _text_schema().items() if c != "_row"}}
        )
    return pl.concat(pieces, rechunk=False).sort("item_id")


def from_frame(cleaned: Any, counts: dict[str, int]) -> MetaTable:
    """A `clean_items` result held in memory (several item tables merged) as a `MetaTable`."""
    import polars as pl

    df = cleaned.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    keys = df.select("join_key", _sort_key(_issue_code(), pl.col("_row")))
    return MetaTable(keys, counts, text=df.select("_row", *TEXT_COLUMNS))


def load_meta(chunks: Iterator[Any], spill: Path) -> MetaTable:
    """Raw item frames (`scalerec.data.ingest.sources.iter_items`) → `MetaTable`, one chunk in memory at a
    time; cleaned text goes to `spill/meta-*.parquet`."""
    import polars as pl

    spill = Path(spill)
    spill.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    kept: list[Any] = []
    base = pending = 0
    lines = raw_junk = raw_empty = 0
    for raw in chunks:
        if not len(raw):
            continue
        rows = pl.int_range(lines, lines + len(raw), dtype=pl.Int64).alias("_row")
        df = flag_titles(raw).with_columns(rows)
        lines += len(raw)
        raw_junk += int(df["title_issue"].eq(ISSUES[1]).sum())
        raw_empty += int(df["title_issue"].eq(ISSUES[2]).sum())
        df = df.with_columns(_sort_key(_issue_code(), pl.col("_row")))
        df = df.filter(pl.col("_key") == pl.col("_key").min().over("join_key"))
        part = spill / f"meta-{len(parts):05d}.parquet"
        meta_columns(df).with_columns(df["_row"]).select("_row", *TEXT_COLUMNS).write_parquet(part)
        parts.append(part)
        kept.append(df.select("join_key", "_key"))
        pending += len(df)
        if pending >= max(base, 1 << 20):  # compact as `etl.KeyTable` does: a few times in all
            kept = [_best(pl.concat(kept))]
            base, pending = len(kept[0]), 0
    keys = (
        _best(pl.concat(kept)).sort("_key")
        if kept
        else pl.DataFrame(schema={"join_key": pl.String, "_key": pl.Int64})
    )
    issue = keys["_key"] % 4
    counts = {
        "lines": lines,
        "unique_items": len(keys),
        "duplicate_lines": lines - len(keys),
        "raw_titles_junk": raw_junk,
        "raw_titles_empty": raw_empty,
        "items_junk_title": int((issue == 1).sum()),
        "items_empty_title": int((issue == 2).sum()),
    }
    return MetaTable(keys, counts, parts)


def read_meta(
    source: str,
    paths: list[Path],
    log: ParseLog,
    spill: Path,
    chunk_bytes: int | None = None,
    columns: Mapping[str, str] | None = None,
) -> MetaTable:
    """The item tables of `paths` as one `MetaTable`: one table is streamed in chunks; several are
    merged on `join_key` first (`sources.merge_items`, whole tables in memory)."""
    if len(paths) == 1:
        return load_meta(iter_items(source, paths[0], log, chunk_bytes or META_CHUNK_BYTES, columns), spill)
    out, counts = clean_items(merge_items([read_items(source, p, log, columns) for p in paths]))
    return from_frame(out, counts)


@dataclass(frozen=True)
class DomainMeta:
    """The item tables of one domain of a pooled dataset (`name` prefixes its item keys)."""

    name: str
    source: str
    paths: list[Path]
    columns: Mapping[str, str] = field(default_factory=dict)


def _domain_chunks(domains: list[DomainMeta], log: ParseLog, chunk_bytes: int) -> Iterator[Any]:
    """Every domain's raw item frames with `join_key`/`item_key` namespaced as `<domain>:<key>`."""
    import polars as pl

    for dom in domains:
        if len(dom.paths) == 1:
            chunks = iter_items(dom.source, dom.paths[0], log, chunk_bytes, dom.columns)
        else:
            merged = merge_items([read_items(dom.source, p, log, dom.columns) for p in dom.paths])
            if merged is None:
                raise ValueError(f"domain {dom.name!r} names no meta files")
            chunks = iter([merged])
        prefix = pl.lit(f"{dom.name}:")
        for raw in chunks:
            yield raw.with_columns(
                (prefix + pl.col("join_key")).alias("join_key"),
                (prefix + pl.col("item_key")).alias("item_key"),
            )


def read_domain_meta(
    domains: list[DomainMeta], log: ParseLog, spill: Path, chunk_bytes: int | None = None
) -> MetaTable:
    """The item tables of several domains as one `MetaTable`, keys namespaced per domain; each
    domain's tables are read as `read_meta` reads them, then all are cleaned chunk by chunk."""
    return load_meta(_domain_chunks(domains, log, chunk_bytes or META_CHUNK_BYTES), spill)
