"""Writers that lay a synthetic `World` out in each public raw format, byte-for-byte in schema.

Kept apart from the generator so adding a format never touches the world model. Lines are built
with Polars string expressions (no per-row Python) so a 23M-rating dump is written in seconds.
Schemas follow the published dumps: Amazon 2014 (ratings CSV `user,item,rating,time`, 5-core
reviews JSON, metadata as Python dict literals with `categories` as a list of lists), Amazon 2018
(ratings CSV `item,user,rating,timestamp`, metadata JSON `asin,title,brand,category[]`), Amazon 2023
(reviews and metadata JSON lines keyed by `parent_asin`, timestamps in ms) and MovieLens
100k/1m/20m (`u.data`/`u.item`, `::`-separated latin-1, CSV with header). `synthesize` (generate a
world, then write it) lives here too, so the generator module never imports its writers. Amazon
2018, the format of the full-dump benchmark, is streamed from a `WorldPlan`
(`synthetic_amazon2018`); the other formats are written from a world held in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scalerec.data.ingest.bench import ML100K_GENRES
from scalerec.data.ingest.synthetic import World, generate, plan
from scalerec.data.ingest.synthetic_amazon2018 import JUNK_TITLES, write_amazon2018, write_amazon2018_world
from scalerec.data.ingest.synthetic_lines import corrupt, csv_lines, json_lines, write_lines

_GENRES = ML100K_GENRES[1:]  # the real genre list, without "unknown"


def _meta_frame(world: World, rng: np.random.Generator, rate: float) -> Any:
    """Item metadata with ~1% items missing (ratings without metadata, as in the real dump) and,
    when `rate > 0`, junk titles and duplicate lines."""
    import polars as pl

    n = len(world.item_key)
    keep = rng.random(n) >= 0.01
    title = world.title.copy()
    if rate > 0:
        junk = np.flatnonzero(rng.random(n) < rate)
        title[junk] = np.array(JUNK_TITLES, dtype=object)[np.arange(len(junk)) % len(JUNK_TITLES)]
    cats = world.categories[keep]
    df = pl.DataFrame(
        {
            "asin": world.item_key[keep],
            "title": title[keep].astype(str),
            "brand": world.brand[keep].astype(str),
            **{f"c{j}": cats[:, j].astype(str) for j in range(cats.shape[1])},
        }
    ).select(
        "asin", "title", "brand", pl.concat_list([f"c{j}" for j in range(cats.shape[1])]).alias("category")
    )
    if rate > 0:
        dup = np.flatnonzero(rng.random(len(df)) < rate)
        df = pl.concat([df, df[dup]])
    return df


def _interactions(world: World) -> Any:
    import polars as pl

    return pl.DataFrame(
        {
            "user": pl.Series(world.user_key).gather(world.user),
            "item": pl.Series(world.item_key).gather(world.item),
            "rating": world.rating,
            "timestamp": world.timestamp,
        }
    )


def _py_literal_meta(meta: Any) -> Any:
    """2014 metadata lines: Python dict literals (`repr`), categories as a list of lists."""
    rows = meta.to_dicts()
    return [
        repr({"asin": r["asin"], "title": r["title"], "categories": [r["category"]], "brand": r["brand"]})
        for r in rows
    ]


def write_amazon2014(
    world: World, out: Path, rng: np.random.Generator, rate: float, gz: bool
) -> dict[str, Path]:
    """`ratings.csv` (user,item,rating,time), `reviews_5.json.gz`, `meta.json[.gz]` (dict literals)."""
    import polars as pl

    inter = _interactions(world)
    lines = corrupt(csv_lines(inter, ["user", "item", "rating", "timestamp"]), rate, rng, "csv")
    paths = {"ratings": write_lines(out / "ratings.csv", lines)}
    rev = inter.select(
        pl.col("user").alias("reviewerID"),
        pl.col("item").alias("asin"),
        pl.col("rating").alias("overall"),
        pl.lit("synthetic").alias("summary"),
        pl.col("timestamp").alias("unixReviewTime"),
    )
    paths["reviews"] = write_lines(out / "reviews_5.json.gz", corrupt(json_lines(rev), rate, rng, "json"))
    meta = pl.Series(_py_literal_meta(_meta_frame(world, rng, rate)), dtype=pl.String)
    paths["meta"] = write_lines(
        out / ("meta.json.gz" if gz else "meta.json"), corrupt(meta, rate, rng, "json")
    )
    return paths


def write_amazon2023(
    world: World, out: Path, rng: np.random.Generator, rate: float, gz: bool
) -> dict[str, Path]:
    """`reviews.jsonl[.gz]` (user_id, parent_asin, rating, timestamp in ms) and `meta.jsonl[.gz]`."""
    import polars as pl

    inter = _interactions(world)
    rev = inter.select(
        pl.col("rating"),
        pl.lit("synthetic").alias("title"),
        pl.lit("").alias("text"),
        pl.col("item").alias("asin"),
        pl.col("item").alias("parent_asin"),
        pl.col("user").alias("user_id"),
        (pl.col("timestamp") * 1000).alias("timestamp"),
        pl.lit(True).alias("verified_purchase"),
    )
    ext = ".jsonl.gz" if gz else ".jsonl"
    paths = {"ratings": write_lines(out / f"reviews{ext}", corrupt(json_lines(rev), rate, rng, "json"))}
    meta = _meta_frame(world, rng, rate).select(
        pl.lit("Synthetic").alias("main_category"),
        pl.col("title"),
        pl.col("brand").alias("store"),
        pl.col("category").alias("categories"),
        pl.struct(pl.col("brand").alias("Brand")).alias("details"),
        pl.col("asin").alias("parent_asin"),
    )
    paths["meta"] = write_lines(out / f"meta{ext}", corrupt(json_lines(meta), rate, rng, "json"))
    return paths


def _movie_frame(world: World) -> Any:
    import polars as pl

    n = len(world.item_key)
    g = world.item_topic
    genres = [sorted({_GENRES[a % 18], _GENRES[(a * 7 + 3) % 18]}) for a in g.tolist()]
    years = 1930 + (g * 37 % 68)
    return pl.DataFrame(
        {"movie_id": np.arange(1, n + 1), "title": world.title.tolist(), "year": years, "genres": genres}
    )


def _ml_files(variant: str, inter: Any, movies: Any) -> tuple[Any, Any, tuple[str, str]]:
    """Ratings lines, movie lines and file names of one MovieLens release layout."""
    import polars as pl

    titled = pl.format("{} ({})", pl.col("title"), pl.col("year"))
    mid = pl.col("movie_id").cast(pl.String)
    cols = ["user", "item", "rating", "ts"]
    if variant == "100k":  # u.data (tab) + u.item (pipe, 19 genre flags)
        flags = [pl.col("genres").list.contains(g).cast(pl.Int8).cast(pl.String) for g in _GENRES]
        fields = [mid, titled, pl.lit("01-Jan-1995"), pl.lit(""), pl.lit("http://x"), pl.lit("0"), *flags]
        item = movies.select(pl.concat_str(fields, separator="|")).to_series()
        return csv_lines(inter, cols, sep="\t"), item, ("u.data", "u.item")
    if variant == "1m":  # '::'-separated .dat files
        fields = [mid, titled, pl.col("genres").list.join("|")]
        item = movies.select(pl.concat_str(fields, separator="::")).to_series()
        return csv_lines(inter, cols, sep="::"), item, ("ratings.dat", "movies.dat")
    ratings = pl.concat(
        [
            pl.Series(["userId,movieId,rating,timestamp"]),
            csv_lines(inter.with_columns(pl.col("rating").cast(pl.Float64)), cols),
        ]
    )
    fields = [mid, pl.format('"{}"', titled), pl.col("genres").list.join("|")]
    item = pl.concat(
        [pl.Series(["movieId,title,genres"]), movies.select(pl.concat_str(fields, separator=",")).to_series()]
    )
    return ratings, item, ("ratings.csv", "movies.csv")


def write_movielens(variant: str) -> Any:
    """Writer for MovieLens `100k`, `1m` or `20m` (also the 25m/32m layout)."""

    def write(world: World, out: Path, rng: np.random.Generator, rate: float, gz: bool) -> dict[str, Path]:
        import polars as pl

        inter = pl.DataFrame(
            {
                "user": world.user + 1,
                "item": world.item + 1,
                "rating": np.round(world.rating).astype(np.int64),
                "ts": world.timestamp,
            }
        )
        ratings, item, names = _ml_files(variant, inter, _movie_frame(world))
        enc = "utf-8" if variant == "20m" else "latin-1"
        return {
            "ratings": write_lines(out / names[0], corrupt(ratings, rate, rng, "csv")),
            "movies": write_lines(out / names[1], item, encoding=enc),
        }

    return write


WRITERS = {
    "amazon2018": write_amazon2018_world,
    "amazon2014": write_amazon2014,
    "amazon2023": write_amazon2023,
    "movielens-100k": write_movielens("100k"),
    "movielens-1m": write_movielens("1m"),
    "movielens-20m": write_movielens("20m"),
}
FORMATS = tuple(WRITERS)


def synthesize(
    fmt: str,
    n_interactions: int,
    out_dir: str | Path,
    seed: int = 0,
    malformed_rate: float = 0.0,
    n_items: int | None = None,
    gzip_meta: bool = True,
) -> dict[str, Path]:
    """Write a synthetic raw dump in format `fmt` (one of `FORMATS`) under `out_dir`.

    Returns the written paths by role (`ratings`, `meta`, `reviews`, `movies`, ...). With
    `malformed_rate > 0` that fraction of lines is replaced by broken ones (wrong column count,
    bad timestamp, invalid JSON) and some titles become HTML/script junk, as in the real dumps.
    """
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not 0.0 <= malformed_rate < 0.5:
        raise ValueError(f"malformed_rate must be in [0, 0.5), got {malformed_rate}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 7919)
    if fmt == "amazon2018":  # streamed: the format of the full-dump benchmark
        return write_amazon2018(
            plan(n_interactions, seed=seed, n_items=n_items), out, rng, malformed_rate, gzip_meta
        )
    world = generate(n_interactions, seed=seed, n_items=n_items)
    return WRITERS[fmt](world, out, rng, malformed_rate, gzip_meta)
