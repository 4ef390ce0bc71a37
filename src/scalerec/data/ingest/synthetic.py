"""Seeded generator of raw dumps in the real public formats, with structure a model can learn.

Every stage needs data that (a) looks exactly like what users bring (Amazon 2014/2018/2023,
MovieLens), so the ETL is exercised on the real formats, and (b) has signal, so "the model beats
most-popular" is a meaningful check. The world: items are grouped in topics; a title is drawn from
its topic's vocabulary plus shared filler words, the brand from the topic's brands, the categories
from the topic's department and name; popularity is Zipf within a topic (moderate skew); a user's
next item stays in the current topic or moves along a sparse topic-transition matrix. So the next
item depends strongly on the recent items' text. Everything is numpy-vectorized (23M ratings in
seconds) and a function of the seed only.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def split_domains(world: World, target_item_share: float = 0.3, target_user_share: float = 0.3,
                  seed: int = 0) -> tuple[World, World]:
    """Cut one world into a source and a target domain that share vocabulary but no item or user.

    Items and users are each split at random; a domain keeps its users' interactions with its own
    items. Every topic appears on both sides, so titles share words, while every target item is
    unseen in the source: the setting of text-based transfer and cold start (docs/design/study.md).
    """
    rng = np.random.default_rng(seed + 104729)
    target_items = rng.random(len(world.item_key)) < target_item_share
    target_users = rng.random(len(world.user_key)) < target_user_share
    return _restrict(world, ~target_items, ~target_users), _restrict(world, target_items, target_users)


def _restrict(world: World, item_mask: np.ndarray, user_mask: np.ndarray) -> World:
    """The sub-world of the kept items and users (indices renumbered, order preserved)."""
    keep = item_mask[world.item] & user_mask[world.user]
    item_map = np.cumsum(item_mask) - 1
    user_map = np.cumsum(user_mask) - 1
    return World(
        item_key=world.item_key[item_mask], title=world.title[item_mask], brand=world.brand[item_mask],
        categories=world.categories[item_mask], item_topic=world.item_topic[item_mask],
        user_key=world.user_key[user_mask], user=user_map[world.user[keep]], item=item_map[world.item[keep]],
        timestamp=world.timestamp[keep], rating=world.rating[keep],
    )
