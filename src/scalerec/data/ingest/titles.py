"""Item-table cleaning: one row per item, titles stripped of markup, junk titles flagged.

The 2018 metadata repeats ASINs and many titles are scraped page fragments (an unclosed
`<span class="a-size-medium …"`, `ue_t0 … getTime()` scripts). Such a title tells a text model
nothing, so the item is flagged (`junk_title` / `empty_title`) and the ETL drops or keeps it by
config; duplicates keep the row with the best title.
"""

from __future__ import annotations

from typing import Any

_ENTITIES = (
    ["&amp;", "&quot;", "&#39;", "&#039;", "&apos;", "&lt;", "&gt;", "&nbsp;"],
    ["&", '"', "'", "'", "'", "<", ">", " "],
)
JUNK_PATTERN = r"getTime|ue_t0|function\s*\(|\bvar\s+\w+\s*=|/>|\"\s*>|^\s*<"


def clean_title(col: Any) -> Any:
    """Polars expr: strip tags (closed or cut off), unescape common entities, collapse spaces."""
    return (
        col.str.replace_all(r"<[^>]*>", " ")
        .str.replace(r"<[^>]*$", " ")
        .str.replace_many(*_ENTITIES)
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def flag_titles(items: Any) -> Any:
    """Per row, no dedupe: `title_issue` (null, `junk_title`, `empty_title`), the cleaned title ("" when
    flagged) and the stripped brand. Row-local, so it gives the same rows on any chunking of the table."""
    import polars as pl

    df = items.with_columns(
        pl.when(pl.col("title").is_null())
        .then(pl.lit("empty_title"))
        .when(pl.col("title").str.contains(JUNK_PATTERN))
        .then(pl.lit("junk_title"))
        .when(clean_title(pl.col("title")) == "")
        .then(pl.lit("empty_title"))
        .otherwise(pl.lit(None, pl.String))
        .alias("title_issue"),
        clean_title(pl.col("title")).alias("title"),
        pl.col("brand").str.strip_chars(),
    )
    return df.with_columns(
        pl.when(pl.col("title_issue").is_null()).then(pl.col("title")).otherwise(pl.lit("")).alias("title")
    )


def clean_items(items: Any) -> tuple[Any, dict[str, int]]:
    """Raw item table → (one row per join_key with `title_issue`, counts for the card).

    The whole table at once; `scalerec.data.ingest.meta.load_meta` gives the same result chunk by chunk.
    """
    import polars as pl

    raw = items["title"]
    df = flag_titles(items)
    best_first = df.with_row_index("_row").sort(pl.col("title_issue").is_not_null(), "_row")
    unique = best_first.unique(subset=["join_key"], keep="first", maintain_order=True).drop("_row")
    counts = {
        "lines": len(items),
        "unique_items": len(unique),
        "duplicate_lines": len(items) - len(unique),
        "raw_titles_junk": int(df["title_issue"].eq("junk_title").sum()),
        "raw_titles_empty": int(df["title_issue"].eq("empty_title").sum()) if len(raw) else 0,
        "items_junk_title": int(unique["title_issue"].eq("junk_title").sum()),
        "items_empty_title": int(unique["title_issue"].eq("empty_title").sum()),
    }
    return meta_columns(unique), counts


def meta_columns(unique: Any) -> Any:
    """Deduped, flagged rows → the metadata columns the ETL joins onto its item codes."""
    import polars as pl

    return unique.select(
        "join_key",
        pl.col("item_key").alias("item_key_out"),
        "title",
        pl.col("brand").fill_null(""),
        pl.col("categories").fill_null([]),
        "title_issue",
        pl.lit(True).alias("has_meta"),
    )
