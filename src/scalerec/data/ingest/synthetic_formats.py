"""Writers that lay a synthetic `World` out in each public raw format, byte-for-byte in schema.

Kept apart from the generator so adding a format never touches the world model. Lines are built
with Polars string expressions (no per-row Python) so a 23M-rating dump is written in seconds.
Schemas follow the published dumps: Amazon 2014 (ratings CSV `user,item,rating,time`, 5-core
reviews JSON, metadata as Python dict literals with `categories` as a list of lists), Amazon 2018
(ratings CSV `item,user,rating,timestamp`, metadata JSON `asin,title,brand,category[]`), Amazon 2023
(reviews and metadata JSON lines keyed by `parent_asin`, timestamps in ms) and MovieLens
100k/1m/20m (`u.data`/`u.item`, `::`-separated latin-1, CSV with header). `synthesize` (generate a
world, then write it) lives here too, so the generator module never imports its writers.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.data.ingest.bench import ML100K_GENRES
from scalerec.data.ingest.synthetic import World, generate

_JUNK_TITLES = [
    "var ue_t0=ue_t0||+new Date(); (function(){ ue.t0 = new Date().getTime(); })();",
    '<span class="a-size-medium a-color-secondary"',
    "",
]
_GENRES = ML100K_GENRES[1:]  # the real genre list, without "unknown"


def _write_lines(path: Path, lines: Any, encoding: str = "utf-8") -> Path:
    """Write a Polars string Series as lines (gzip when the name ends in .gz)."""
    import io

    import polars as pl

    frame = pl.DataFrame({"line": lines})
    if path.suffix != ".gz" and encoding == "utf-8":
        frame.write_csv(path, include_header=False, quote_style="never")
        return path
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False, quote_style="never")
    data = buf.getvalue()
    del buf
    if encoding != "utf-8":
        data = data.decode("utf-8").encode(encoding, errors="replace")
    if path.suffix == ".gz":
        with gzip.open(path, "wb", compresslevel=1) as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def _corrupt(lines: Any, rate: float, rng: np.random.Generator, kind: str) -> Any:
    """Replace about `rate` of the lines by broken variants of the given kind (csv/json)."""
    import polars as pl

    n = len(lines)
    idx = np.flatnonzero(rng.random(n) < rate)
    if len(idx) == 0:
        return lines
    values = lines.gather(idx).to_list()
    bad = []
    for j, line in enumerate(values):
        if kind == "csv":
            parts = line.split(",")
            variants = [
                ",".join(parts[:2]),
                ",".join(parts[:3] + ["not-a-time"]),
                ",".join(parts[:2] + ["five"] + parts[3:]),
                line + ",extra",
            ]
        else:
            variants = [line[: max(1, len(line) // 2)], line.replace(":", "=", 1), "{" + line]
        bad.append(variants[j % len(variants)])
    return lines.scatter(idx, pl.Series(bad, dtype=pl.String))


def _meta_frame(world: World, rng: np.random.Generator, rate: float) -> Any:
    """Item metadata with ~1% items missing (ratings without metadata, as in the real dump) and,
    when `rate > 0`, junk titles and duplicate lines."""
    import polars as pl

    n = len(world.item_key)
    keep = rng.random(n) >= 0.01
    title = world.title.copy()
    if rate > 0:
        junk = np.flatnonzero(rng.random(n) < rate)
        title[junk] = np.array(_JUNK_TITLES, dtype=object)[np.arange(len(junk)) % len(_JUNK_TITLES)]
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


def _csv_lines(df: Any, cols: list[str], sep: str = ",") -> Any:
    import polars as pl

    exprs = [pl.col(c).cast(pl.String) for c in cols]
    return df.select(pl.concat_str(exprs, separator=sep).alias("line")).to_series()


def _json_lines(df: Any) -> Any:
    import polars as pl

    return df.select(pl.struct(pl.all()).struct.json_encode().alias("line")).to_series()


def write_amazon2018(
    world: World, out: Path, rng: np.random.Generator, rate: float, gz: bool
) -> dict[str, Path]:
    """`ratings.csv` (item,user,rating,timestamp; no header), `meta.json[.gz]`, `reviews_5.json.gz`."""
    inter = _interactions(world)
    lines = _corrupt(_csv_lines(inter, ["item", "user", "rating", "timestamp"]), rate, rng, "csv")
    paths = {"ratings": _write_lines(out / "ratings.csv", lines)}
    meta = _corrupt(_json_lines(_meta_frame(world, rng, rate)), rate, rng, "json")
    paths["meta"] = _write_lines(out / ("meta.json.gz" if gz else "meta.json"), meta)
    if len(inter) <= 2_000_000:
        import polars as pl

        rev = inter.select(
            pl.col("rating").alias("overall"),
            pl.lit(True).alias("verified"),
            pl.col("user").alias("reviewerID"),
            pl.col("item").alias("asin"),
            pl.lit("synthetic review").alias("reviewText"),
            pl.col("timestamp").alias("unixReviewTime"),
        )
        paths["reviews"] = _write_lines(out / "reviews_5.json.gz", _json_lines(rev))
    return paths


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
    lines = _corrupt(_csv_lines(inter, ["user", "item", "rating", "timestamp"]), rate, rng, "csv")
    paths = {"ratings": _write_lines(out / "ratings.csv", lines)}
    rev = inter.select(
        pl.col("user").alias("reviewerID"),
        pl.col("item").alias("asin"),
        pl.col("rating").alias("overall"),
        pl.lit("synthetic").alias("summary"),
        pl.col("timestamp").alias("unixReviewTime"),
    )
    paths["reviews"] = _write_lines(out / "reviews_5.json.gz", _corrupt(_json_lines(rev), rate, rng, "json"))
    meta = pl.Series(_py_literal_meta(_meta_frame(world, rng, rate)), dtype=pl.String)
    paths["meta"] = _write_lines(
        out / ("meta.json.gz" if gz else "meta.json"), _corrupt(meta, rate, rng, "json")
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
    paths = {"ratings": _write_lines(out / f"reviews{ext}", _corrupt(_json_lines(rev), rate, rng, "json"))}
    meta = _meta_frame(world, rng, rate).select(
        pl.lit("Synthetic").alias("main_category"),
        pl.col("title"),
        pl.col("brand").alias("store"),
        pl.col("category").alias("categories"),
        pl.struct(pl.col("brand").alias("Brand")).alias("details"),
        pl.col("asin").alias("parent_asin"),
    )
    paths["meta"] = _write_lines(out / f"meta{ext}", _corrupt(_json_lines(meta), rate, rng, "json"))
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
        return _csv_lines(inter, cols, sep="\t"), item, ("u.data", "u.item")
    if variant == "1m":  # '::'-separated .dat files
        fields = [mid, titled, pl.col("genres").list.join("|")]
        item = movies.select(pl.concat_str(fields, separator="::")).to_series()
        return _csv_lines(inter, cols, sep="::"), item, ("ratings.dat", "movies.dat")
    ratings = pl.concat(
        [
            pl.Series(["userId,movieId,rating,timestamp"]),
            _csv_lines(inter.with_columns(pl.col("rating").cast(pl.Float64)), cols),
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
            "ratings": _write_lines(out / names[0], _corrupt(ratings, rate, rng, "csv")),
            "movies": _write_lines(out / names[1], item, encoding=enc),
        }

    return write


WRITERS = {
    "amazon2018": write_amazon2018,
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
    world = generate(n_interactions, seed=seed, n_items=n_items)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 7919)
    return WRITERS[fmt](world, out, rng, malformed_rate, gzip_meta)
