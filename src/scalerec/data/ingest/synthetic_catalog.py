"""The synthetic catalog, held compactly so a 15M-item world fits in a few hundred MB.

Titles, brands and categories are not stored as strings: per item we keep the small random codes
they are built from (int8/int16) and render any slice of items on demand, so the metadata file can
be written in chunks. The random draws are the ones the in-memory generator always made, in the
same order and sizes, so a seed gives the same catalog as before streaming.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CONS = list("bcdfghjklmnprstvz") + ["ch", "sh", "tr", "br", "gl"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
PER_TOPIC, N_FILLER = 10, 60


def words(rng: np.random.Generator, n: int) -> np.ndarray:
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


def key_params(rng: np.random.Generator, n: int, width: int) -> tuple[int, int]:
    """The seeded affine map (multiplier, salt) behind `n` distinct base-36 keys of `width` digits."""
    space = 36**width
    mult = int(rng.integers(1, max(2, space // max(n, 1) // 4)))
    salt = int(rng.integers(0, space // 4))
    return mult, salt


def encode_keys(index: np.ndarray, mult: int, salt: int, prefix: str, width: int) -> np.ndarray:
    """Keys like `B00X4WHP5E` of the given 0-based indices (unicode array)."""
    vals = index.astype(np.int64) * mult + salt
    alphabet = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
    digits = np.empty((len(vals), width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):
        digits[:, j] = alphabet[vals % 36]
        vals //= 36
    body = digits.view(f"S{width}").ravel().astype(f"U{width}")
    return np.char.add(prefix, body)


def zipf_cdf_by_topic(item_topic: np.ndarray, n_topics: int, alpha: float) -> np.ndarray:
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


@dataclass
class Catalog:
    """Items sorted by topic, as codes; `titles/brands/categories(lo, hi)` render a slice."""

    item_topic: np.ndarray  # int64[n_items], sorted
    topic_w: np.ndarray  # float64[n_topics] topic popularity weights
    topic_words: np.ndarray  # object[n_topics * PER_TOPIC]
    filler: np.ndarray  # object[N_FILLER]
    dept_names: np.ndarray  # object[n_dept]
    brand_names: np.ndarray  # object[n_topics * 3]
    picks: np.ndarray  # int8[n_items, 3] title word within the topic's vocabulary
    fill: np.ndarray  # int8[n_items] filler word
    model_no: np.ndarray  # int16[n_items]
    brand_pick: np.ndarray  # int8[n_items] which of the topic's 3 brands
    topic_dept: np.ndarray  # int64[n_topics]

    def titles(self, lo: int, hi: int) -> np.ndarray:
        """`Word Word Word Filler 123` titles of items lo..hi-1 (object array)."""
        import polars as pl

        topic = self.item_topic[lo:hi]
        cols = [self.topic_words[self.picks[lo:hi, j] + topic * PER_TOPIC] for j in range(3)]
        cols.append(self.filler[self.fill[lo:hi]])
        model_no = self.model_no[lo:hi].astype(str).astype(object)
        return (
            pl.DataFrame({f"w{j}": c.tolist() for j, c in enumerate(cols)} | {"m": model_no.tolist()})
            .select(
                pl.concat_str([pl.col(f"w{j}").str.to_titlecase() for j in range(4)] + ["m"], separator=" ")
            )
            .to_series()
            .to_numpy()
            .astype(object)
        )

    def brands(self, lo: int, hi: int) -> np.ndarray:
        return self.brand_names[self.item_topic[lo:hi] * 3 + self.brand_pick[lo:hi]]

    def categories(self, lo: int, hi: int) -> np.ndarray:
        """object[hi - lo, 3]: store, the topic's department, the topic's first word + ' Goods'."""
        topic = self.item_topic[lo:hi]
        cats = np.empty((hi - lo, 3), dtype=object)
        cats[:, 0] = "Synthetic Store"
        cats[:, 1] = self.dept_names[self.topic_dept[topic]]
        cats[:, 2] = np.char.add(self.topic_words[topic * PER_TOPIC].astype(str), " Goods").astype(object)
        return cats


def catalog(rng: np.random.Generator, n_items: int, n_topics: int) -> Catalog:
    """Draw the catalog (topic sizes, vocabularies, per-item word codes) from `rng`."""
    topic_w = 1.0 / np.arange(1, n_topics + 1) ** 0.3
    item_topic = np.sort(rng.choice(n_topics, size=n_items, p=topic_w / topic_w.sum()))
    item_topic[:n_topics] = np.arange(n_topics)  # every topic has at least one item
    item_topic.sort()
    n_dept = max(2, n_topics // 8)
    vocab = words(rng, n_topics * PER_TOPIC + N_FILLER + n_dept + n_topics * 3)
    rest = vocab[n_topics * PER_TOPIC + N_FILLER :]
    # each draw is made whole (sizes and order fixed by the seed contract), then narrowed
    picks = rng.integers(0, PER_TOPIC, size=(n_items, 3)).astype(np.int8)
    fill = rng.integers(0, N_FILLER, size=n_items).astype(np.int8)
    model_no = rng.integers(1, 999, size=n_items).astype(np.int16)
    brand_pick = rng.integers(0, 3, size=n_items).astype(np.int8)
    return Catalog(
        item_topic=item_topic,
        topic_w=topic_w,
        topic_words=vocab[: n_topics * PER_TOPIC],
        filler=vocab[n_topics * PER_TOPIC : n_topics * PER_TOPIC + N_FILLER],
        dept_names=np.array([w.capitalize() for w in rest[:n_dept]], dtype=object),
        brand_names=np.array([w.capitalize() + " Co" for w in rest[n_dept:]], dtype=object),
        picks=picks,
        fill=fill,
        model_no=model_no,
        brand_pick=brand_pick,
        topic_dept=rng.integers(0, n_dept, size=n_topics),
    )
