"""The Amazon 2018 writer, streamed: ratings chunk by chunk of users, metadata chunk by chunk of items.

This is the format the full-dump benchmark uses (233M ratings, 15M metadata lines), so it never
holds more than one chunk of lines. The writer's random draws (`rng`, seeded apart from the world)
are the ones the all-in-memory writer made, in the same order: corruption of the ratings lines,
then which items have metadata, junk titles and duplicated metadata lines, then corruption of the
metadata lines; each is one `random()` per line, so drawing it chunk by chunk changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.data.ingest.synthetic import WholeWorld, World, WorldPlan
from scalerec.data.ingest.synthetic_lines import LineSink, corrupt_counted, csv_lines, json_lines

JUNK_TITLES = [
    "var ue_t0=ue_t0||+new Date(); (function(){ ue.t0 = new Date().getTime(); })();",
    '<span class="a-size-medium a-color-secondary"',
    "",
]
META_CHUNK = 1 << 18  # items per metadata chunk
REVIEWS_MAX = 2_000_000  # reviews_5.json.gz is written only for dumps up to this many ratings


def _draw(rng: np.random.Generator, n: int, test: Any) -> np.ndarray:
    """`test(rng.random(n))` as a bool array, drawn in pieces (same draws as one call)."""
    out = np.empty(n, dtype=bool)
    for a in range(0, n, META_CHUNK):
        out[a : a + META_CHUNK] = test(rng.random(min(META_CHUNK, n - a)))
    return out


def _meta_chunks(plan: WorldPlan | WholeWorld, rng: np.random.Generator, rate: float) -> Iterator[Any]:
    """Metadata JSON lines (asin, title, brand, category[]) in item order, then the duplicates.

    About 1% of items get no line (ratings without metadata, as in the real dump); with `rate > 0`,
    that fraction of titles becomes junk and of lines is repeated at the end.
    """
    import polars as pl

    n, item_key = plan.n_items, plan.item_key
    keep = _draw(rng, n, lambda r: r >= 0.01)
    junk = _draw(rng, n, lambda r: r < rate) if rate > 0 else np.zeros(n, dtype=bool)
    dup = _draw(rng, int(keep.sum()), lambda r: r < rate) if rate > 0 else None
    junk_rank = np.cumsum(junk) - 1
    dups, kept_before = [], 0
    for lo in range(0, n, META_CHUNK):
        hi = min(n, lo + META_CHUNK)
        title, brand, cats = plan.items_text(lo, hi)
        j = np.flatnonzero(junk[lo:hi])
        title[j] = np.array(JUNK_TITLES, dtype=object)[junk_rank[lo:hi][j] % len(JUNK_TITLES)]
        k = keep[lo:hi]
        cats = cats[k]
        lines = json_lines(
            pl.DataFrame(
                {
                    "asin": item_key.slice(lo, hi - lo).filter(pl.Series(k)),
                    "title": title[k].astype(str),
                    "brand": brand[k].astype(str),
                    **{f"c{c}": cats[:, c].astype(str) for c in range(3)},
                }
            ).select("asin", "title", "brand", pl.concat_list([f"c{c}" for c in range(3)]).alias("category"))
        )
        if dup is not None:
            dups.append(lines.filter(pl.Series(dup[kept_before : kept_before + len(lines)])))
        kept_before += len(lines)
        yield lines
    yield from dups


def _ratings(chunk: Any, item_key: Any) -> Any:
    import polars as pl

    return pl.DataFrame(
        {
            "user": pl.Series(chunk.user_key).gather(chunk.user),
            "item": item_key.gather(chunk.item),
            "rating": chunk.rating,
            "timestamp": chunk.timestamp,
        }
    )


def _reviews(inter: Any) -> Any:
    import polars as pl

    return json_lines(
        inter.select(
            pl.col("rating").alias("overall"),
            pl.lit(True).alias("verified"),
            pl.col("user").alias("reviewerID"),
            pl.col("item").alias("asin"),
            pl.lit("synthetic review").alias("reviewText"),
            pl.col("timestamp").alias("unixReviewTime"),
        )
    )


def write_amazon2018(
    plan: WorldPlan | WholeWorld, out: Path, rng: np.random.Generator, rate: float, gz: bool
) -> dict[str, Path]:
    """`ratings.csv` (item,user,rating,timestamp; no header), `meta.json[.gz]`, `reviews_5.json.gz`."""

    paths = {"ratings": out / "ratings.csv"}
    if plan.nnz <= REVIEWS_MAX:
        paths["reviews"] = out / "reviews_5.json.gz"
    item_key = plan.item_key
    with ExitStack() as files:
        sink = files.enter_context(LineSink(paths["ratings"]))
        rev = files.enter_context(LineSink(paths["reviews"])) if "reviews" in paths else None
        n_bad = 0
        for chunk in plan.chunks():
            inter = _ratings(chunk, item_key)
            cols = ["item", "user", "rating", "timestamp"]
            lines, bad = corrupt_counted(csv_lines(inter, cols), rate, rng, "csv", n_bad)
            n_bad += bad
            sink.write(lines)
            if rev is not None:
                rev.write(_reviews(inter))
    paths["meta"] = out / ("meta.json.gz" if gz else "meta.json")
    with LineSink(paths["meta"]) as sink:
        n_bad = 0
        for lines in _meta_chunks(plan, rng, rate):
            lines, bad = corrupt_counted(lines, rate, rng, "json", n_bad)
            n_bad += bad
            sink.write(lines)
    return {k: paths[k] for k in ("ratings", "meta", "reviews") if k in paths}


def write_amazon2018_world(
    world: World, out: Path, rng: np.random.Generator, rate: float, gz: bool
) -> dict[str, Path]:
    """`write_amazon2018` of a world held in memory (e.g. one side of `split_domains`)."""
    return write_amazon2018(WholeWorld(world), out, rng, rate, gz)
