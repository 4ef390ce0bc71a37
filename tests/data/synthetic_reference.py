"""The in-memory synthetic generator and Amazon-2018 writer as they were before streaming (frozen).

The streaming generator (`scalerec.data.ingest.synthetic`) must write the same bytes for the same
seed; this copy is the reference it is checked against, so it must never be edited to match.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_CONS = list("bcdfghjklmnprstvz") + ["ch", "sh", "tr", "br", "gl"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]


@dataclass
class World:
    """The generated catalog and histories (row i of the item arrays = item index i, 0-based)."""

    item_key: np.ndarray  # object[n_items], ASIN-like
    title: np.ndarray  # object[n_items]
    brand: np.ndarray  # object[n_items]
    categories: np.ndarray  # object[n_items, 3]
    item_topic: np.ndarray  # int64[n_items]
    user_key: np.ndarray  # object[n_users]
    user: np.ndarray  # int64[nnz] user index per interaction (user-major, chronological)
    item: np.ndarray  # int64[nnz]
    timestamp: np.ndarray  # int64[nnz] unix seconds
    rating: np.ndarray  # float32[nnz]


def _words(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` distinct pronounceable pseudo-words (3 syllables)."""
    syl = np.array([c + v for c in _CONS for v in _VOWELS], dtype=object)
    k = len(syl)
    n_syll = 3 if n < k**3 // 4 else 4
    codes = rng.choice(k**n_syll, size=n, replace=False)
    out = syl[codes % k]
    for _ in range(n_syll - 1):
        codes //= k
        out = out + syl[codes % k]
    return out


def _keys(rng: np.random.Generator, n: int, prefix: str, width: int) -> np.ndarray:
    """`n` distinct upper-case base-36 keys like `B00X4WHP5E` (a seeded affine map of 0..n-1)."""
    space = 36**width
    mult = int(rng.integers(1, max(2, space // max(n, 1) // 4)))
    salt = int(rng.integers(0, space // 4))
    vals = np.arange(n, dtype=np.int64) * mult + salt
    alphabet = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
    digits = np.empty((n, width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):
        digits[:, j] = alphabet[vals % 36]
        vals //= 36
    body = digits.view(f"S{width}").ravel().astype(f"U{width}")
    return np.char.add(prefix, body)


def _zipf_cdf_by_topic(item_topic: np.ndarray, n_topics: int, alpha: float) -> np.ndarray:
    """Per-item cumulative probability within its topic, shifted by the topic index.

    Items are sorted by topic, so `searchsorted(cdf, topic + u)` samples an item of `topic`
    with probability proportional to 1 / rank^alpha.
    """
    starts = np.searchsorted(item_topic, np.arange(n_topics))
    rank = np.arange(len(item_topic)) - starts[item_topic] + 1
    w = rank.astype(np.float64) ** -alpha
    totals = np.bincount(item_topic, weights=w, minlength=n_topics)
    cum = np.cumsum(w)
    before = np.concatenate([[0.0], np.cumsum(totals)])[item_topic]
    return item_topic + (cum - before) / totals[item_topic]


def _catalog(rng: np.random.Generator, n_items: int, n_topics: int) -> dict[str, np.ndarray]:
    import polars as pl

    topic_w = 1.0 / np.arange(1, n_topics + 1) ** 0.3
    item_topic = np.sort(rng.choice(n_topics, size=n_items, p=topic_w / topic_w.sum()))
    item_topic[:n_topics] = np.arange(n_topics)  # every topic has at least one item
    item_topic.sort()
    per_topic, n_filler, n_dept = 10, 60, max(2, n_topics // 8)
    vocab = _words(rng, n_topics * per_topic + n_filler + n_dept + n_topics * 3)
    topic_words = vocab[: n_topics * per_topic]
    filler = vocab[n_topics * per_topic : n_topics * per_topic + n_filler]
    rest = vocab[n_topics * per_topic + n_filler :]
    dept_names = np.array([w.capitalize() for w in rest[:n_dept]], dtype=object)
    brand_names = np.array([w.capitalize() + " Co" for w in rest[n_dept:]], dtype=object)
    picks = rng.integers(0, per_topic, size=(n_items, 3)) + (item_topic * per_topic)[:, None]
    cols = [topic_words[picks[:, j]] for j in range(3)]
    cols.append(filler[rng.integers(0, n_filler, size=n_items)])
    model_no = rng.integers(1, 999, size=n_items).astype(str).astype(object)
    title = (
        pl.DataFrame({f"w{j}": c.tolist() for j, c in enumerate(cols)} | {"m": model_no.tolist()})
        .select(pl.concat_str([pl.col(f"w{j}").str.to_titlecase() for j in range(4)] + ["m"], separator=" "))
        .to_series()
        .to_numpy()
        .astype(object)
    )
    brand = brand_names[item_topic * 3 + rng.integers(0, 3, size=n_items)]
    topic_dept = rng.integers(0, n_dept, size=n_topics)
    cats = np.empty((n_items, 3), dtype=object)
    cats[:, 0] = "Synthetic Store"
    cats[:, 1] = dept_names[topic_dept[item_topic]]
    cats[:, 2] = np.char.add(topic_words[item_topic * per_topic].astype(str), " Goods").astype(object)
    return {"item_topic": item_topic, "title": title, "brand": brand, "categories": cats, "topic_w": topic_w}


def _lengths(rng: np.random.Generator, n_interactions: int, mean_len: float) -> np.ndarray:
    """History lengths (>= 1, heavy-tailed, capped at 200) summing exactly to `n_interactions`."""
    n_guess = int(n_interactions / mean_len * 1.3) + 10
    sigma = 0.8
    raw = rng.lognormal(np.log(mean_len) - sigma**2 / 2, sigma, size=n_guess)
    lens = np.clip(np.round(raw), 1, 200).astype(np.int64)
    cum = np.cumsum(lens)
    n_users = int(np.searchsorted(cum, n_interactions)) + 1
    if n_users > n_guess:
        return _lengths(rng, n_interactions, mean_len * 1.2)
    lens = lens[:n_users].copy()
    lens[-1] -= int(cum[n_users - 1] - n_interactions)
    return lens


def generate(n_interactions: int, seed: int = 0, n_items: int | None = None, mean_len: float = 9.0) -> World:
    """Build the synthetic world: catalog, users and chronological histories (vectorized)."""
    if n_interactions < 10:
        raise ValueError(f"n_interactions must be >= 10, got {n_interactions}")
    rng = np.random.default_rng(seed)
    n_items = n_items or int(np.clip(n_interactions // 20, 50, 2_000_000))
    n_topics = int(np.clip(n_items // 30, 4, 50_000))
    cat = _catalog(rng, n_items, n_topics)
    item_topic = cat["item_topic"]
    cdf = _zipf_cdf_by_topic(item_topic, n_topics, alpha=0.9)
    succ = rng.integers(0, n_topics, size=(n_topics, 2))
    topic_cdf = np.cumsum(cat["topic_w"]) / cat["topic_w"].sum()
    lens = _lengths(rng, n_interactions, mean_len)
    order = np.argsort(-lens, kind="stable")  # active users form a prefix at every step
    sorted_lens = lens[order]
    topics = np.searchsorted(topic_cdf, rng.random(len(lens)))
    offsets = np.concatenate([[0], np.cumsum(lens)])
    items = np.empty(int(offsets[-1]), dtype=np.int64)
    for step in range(int(sorted_lens[0])):
        m = int(np.searchsorted(-sorted_lens, -step, side="left"))  # users with len > step
        m = int((sorted_lens > step).sum()) if m == 0 else m
        users = order[:m]
        if step > 0:
            r = rng.random(m)
            cur = topics[users]
            nxt = np.where(r < 0.55, cur, succ[cur, rng.integers(0, 2, size=m)])
            jump = r > 0.93
            nxt[jump] = np.searchsorted(topic_cdf, rng.random(int(jump.sum())))
            topics[users] = nxt
        picked = np.searchsorted(cdf, topics[users] + rng.random(m) * 0.999999)
        items[offsets[users] + step] = np.minimum(picked, n_items - 1)
    user = np.repeat(np.arange(len(lens)), lens)
    start = rng.integers(1_100_000_000, 1_500_000_000, size=len(lens))
    gaps = rng.exponential(86_400 * 20, size=len(items)).astype(np.int64) + 1
    pos = np.arange(len(items)) - offsets[user]
    gaps[pos == 0] = 0
    ts = start[user] + (np.cumsum(gaps) - np.cumsum(gaps)[offsets[user]])
    perm = rng.permutation(n_items)  # hide topic order from item keys
    rating = rng.choice(np.arange(1, 6, dtype=np.float32), p=[0.07, 0.05, 0.09, 0.2, 0.59], size=len(items))
    return World(
        item_key=_keys(rng, n_items, "B0", 8)[perm],
        title=cat["title"],
        brand=cat["brand"],
        categories=cat["categories"],
        item_topic=item_topic,
        user_key=_keys(rng, len(lens), "A1", 12),
        user=user,
        item=items,
        timestamp=ts.astype(np.int64),
        rating=rating,
    )


_JUNK_TITLES = [
    "var ue_t0=ue_t0||+new Date(); (function(){ ue.t0 = new Date().getTime(); })();",
    '<span class="a-size-medium a-color-secondary"',
    "",
]


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


def synthesize_amazon2018(n, out, seed=0, rate=0.0, n_items=None, gz=True):
    world = generate(n, seed=seed, n_items=n_items)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return write_amazon2018(world, out, np.random.default_rng(seed + 7919), rate, gz)
