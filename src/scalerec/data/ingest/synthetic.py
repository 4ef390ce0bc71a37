"""Seeded generator of raw dumps in the real public formats, with structure a model can learn.

Every stage needs data that (a) looks exactly like what users bring (Amazon 2014/2018/2023,
MovieLens), so the ETL is exercised on the real formats, and (b) has signal, so "the model beats
most-popular" is a meaningful check. The world: items are grouped in topics; a title is drawn from
its topic's vocabulary plus shared filler words, the brand from the topic's brands, the categories
from the topic's department and name; popularity is Zipf within a topic (moderate skew); a user's
next item stays in the current topic or moves along a sparse topic-transition matrix. So the next
item depends strongly on the recent items' text. Everything is numpy-vectorized and a function of
the seed only.

Streaming: `plan` draws the histories' item ids (int32, 4 bytes per rating, the one array that
grows with the dump) and per-user state, and records the random generator's state at each chunk of
users; `WorldPlan.chunks()` then renders users, keys, timestamps and ratings chunk by chunk. The
draws are the ones the former all-in-memory generator made, in the same order (numpy's `random`,
`exponential` and range-2 `integers` give the same values whether drawn at once or in pieces), so a
seed gives the same world as before; `generate` assembles it whole for small worlds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalerec.data.ingest.synthetic_catalog import (
    Catalog,
    catalog,
    encode_keys,
    key_params,
    zipf_cdf_by_topic,
)

CHUNK_USERS = 1 << 16  # users per rendered chunk (~590K ratings at 9 per user)
_SUB = 1 << 20  # draws per piece inside one generation step (even: see `_step`)
_RATING_P = [0.07, 0.05, 0.09, 0.2, 0.59]


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


@dataclass
class Chunk:
    """Users `u0..u1-1` of a plan: `user` indexes `user_key` (0-based within the chunk)."""

    u0: int
    user_key: np.ndarray
    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    rating: np.ndarray


@dataclass
class WorldPlan:
    """Everything but the per-rating columns, which `chunks()` renders from recorded rng states."""

    catalog: Catalog
    item_key: Any  # polars String Series [n_items] (after the key permutation)
    offsets: np.ndarray  # int64[n_users + 1] first rating of each user
    items: np.ndarray  # int32[nnz]
    start: np.ndarray  # int32[n_users] first timestamp
    user_keys: tuple[int, int]  # key_params of the user keys
    bounds: list[int]  # user index at each chunk start, then n_users
    gap_states: list[dict[str, Any]] = field(default_factory=list)
    rating_states: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_items(self) -> int:
        return len(self.item_key)

    @property
    def nnz(self) -> int:
        return int(self.offsets[-1])

    def items_text(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Title, brand and categories of items lo..hi-1."""
        return self.catalog.titles(lo, hi), self.catalog.brands(lo, hi), self.catalog.categories(lo, hi)

    def chunks(self) -> Iterator[Chunk]:
        """The users in order, `len(bounds) - 1` chunks, each rendered from its recorded states."""
        rng = np.random.default_rng()
        for k in range(len(self.bounds) - 1):
            u0, u1 = self.bounds[k], self.bounds[k + 1]
            lo, hi = int(self.offsets[u0]), int(self.offsets[u1])
            lens = np.diff(self.offsets[u0 : u1 + 1])
            user = np.repeat(np.arange(u1 - u0), lens)
            first = self.offsets[u0:u1] - lo
            rng.bit_generator.state = self.gap_states[k]
            gaps = rng.exponential(86_400 * 20, size=hi - lo).astype(np.int64) + 1
            gaps[first] = 0
            cum = np.cumsum(gaps)
            ts = self.start[u0:u1].astype(np.int64)[user] + (cum - cum[first][user])
            rng.bit_generator.state = self.rating_states[k]
            rating = rng.choice(np.arange(1, 6, dtype=np.float32), p=_RATING_P, size=hi - lo)
            keys = encode_keys(np.arange(u0, u1), *self.user_keys, "A1", 12)
            yield Chunk(u0, keys, user, self.items[lo:hi].astype(np.int64), ts, rating)


@dataclass
class WholeWorld:
    """A `World` in memory seen as a `WorldPlan` (one chunk), for writers that stream plans."""

    world: World

    @property
    def n_items(self) -> int:
        return len(self.world.item_key)

    @property
    def item_key(self) -> Any:
        import polars as pl

        return pl.Series(self.world.item_key, dtype=pl.String)

    @property
    def nnz(self) -> int:
        return len(self.world.item)

    def items_text(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = self.world
        return w.title[lo:hi].copy(), w.brand[lo:hi], w.categories[lo:hi]

    def chunks(self) -> Iterator[Chunk]:
        w = self.world
        yield Chunk(0, w.user_key, w.user, w.item, w.timestamp, w.rating)


def _lengths(rng: np.random.Generator, n_interactions: int, mean_len: float) -> np.ndarray:
    """History lengths (>= 1, heavy-tailed, capped at 200) summing exactly to `n_interactions`."""
    n_guess = int(n_interactions / mean_len * 1.3) + 10
    sigma = 0.8
    raw = rng.lognormal(np.log(mean_len) - sigma**2 / 2, sigma, size=n_guess)
    np.clip(np.round(raw, out=raw), 1, 200, out=raw)
    lens = raw.astype(np.int64)
    del raw
    cum = np.cumsum(lens)
    n_users = int(np.searchsorted(cum, n_interactions)) + 1
    if n_users > n_guess:
        return _lengths(rng, n_interactions, mean_len * 1.2)
    lens = lens[:n_users].copy()
    lens[-1] -= int(cum[n_users - 1] - n_interactions)
    return lens


@dataclass
class _Walk:
    """The topic walk's fixed tables and per-user state, users in descending-length order."""

    cdf: np.ndarray  # zipf_cdf_by_topic
    succ: np.ndarray  # int64[n_topics, 2] the two successor topics
    topic_cdf: np.ndarray
    order: np.ndarray  # users, longest first (active users form a prefix at every step)
    topics: np.ndarray  # int32[n_users] current topic
    offsets: np.ndarray


def _step(rng: np.random.Generator, w: _Walk, step: int, m: int, items: np.ndarray) -> None:
    """Move the first `m` users of `w.order` one item along; write their item at position `step`.

    Same draws as the one-shot form (`r = random(m)`, `integers(0, 2, m)`, `random(#jumps)`,
    `random(m)`), taken in even-sized pieces so memory stays O(piece) beyond the state arrays:
    range-2 integers use one 32-bit half of a 64-bit draw each, so even pieces split nothing.
    """
    n_items = len(w.cdf)
    if step > 0:
        stay = np.empty(m, dtype=bool)
        jump = np.empty(m, dtype=bool)
        for a in range(0, m, _SUB):
            r = rng.random(min(_SUB, m - a))
            stay[a : a + len(r)] = r < 0.55
            jump[a : a + len(r)] = r > 0.93
        for a in range(0, m, _SUB):
            users = w.order[a : a + _SUB][: m - a]
            cur = w.topics[users]
            coin = rng.integers(0, 2, size=len(users))
            w.topics[users] = np.where(stay[a : a + len(users)], cur, w.succ[cur, coin])
        jumpers = w.order[:m][jump]
        del stay, jump
        w.topics[jumpers] = np.searchsorted(w.topic_cdf, rng.random(len(jumpers)))
    for a in range(0, m, _SUB):
        users = w.order[a : a + _SUB][: m - a]
        picked = np.searchsorted(w.cdf, w.topics[users] + rng.random(len(users)) * 0.999999)
        items[w.offsets[users] + step] = np.minimum(picked, n_items - 1)


def _item_keys(perm: np.ndarray, params: tuple[int, int]) -> Any:
    """Item keys as one polars String Series, encoded in pieces (a 15M-item unicode array is 600 MB)."""
    import polars as pl

    if len(perm) == 0:
        return pl.Series([], dtype=pl.String)
    step = 1 << 20
    return pl.concat(
        [
            pl.Series(encode_keys(perm[a : a + step], *params, "B0", 8), dtype=pl.String)
            for a in range(0, len(perm), step)
        ],
        rechunk=True,
    )


def _numpy_item_keys(perm: np.ndarray, params: tuple[int, int]) -> np.ndarray:
    """`_item_keys` without polars: the same keys as one numpy unicode array, encoded in pieces."""
    step = 1 << 20
    pieces = [encode_keys(perm[a : a + step], *params, "B0", 8) for a in range(0, len(perm), step)]
    return np.concatenate(pieces) if pieces else np.array([], dtype="U10")


def _skip_doubles(rng: np.random.Generator, n: int) -> None:
    """Move `rng` past `n` calls' worth of `random()` without drawing them.

    `advance` also drops the generator's cached 32-bit half-word, which `random()` leaves alone
    (a later small-range `integers` draw uses it), so that cache is put back.
    """
    before = dict(rng.bit_generator.state)
    rng.bit_generator.advance(n)  # type: ignore[attr-defined]  # PCG64 has it; numpy's stub types the base class
    after = dict(rng.bit_generator.state)
    after["has_uint32"], after["uinteger"] = before["has_uint32"], before["uinteger"]
    rng.bit_generator.state = after


def plan(
    n_interactions: int,
    seed: int = 0,
    n_items: int | None = None,
    mean_len: float = 9.0,
    chunk_users: int | None = None,
    numpy_keys: bool = False,
) -> WorldPlan:
    """Draw the world up to the per-rating columns, recording rng states per chunk of users.

    `numpy_keys` gives `item_key` as a numpy unicode array (same keys, same draws) instead of a
    polars Series, for machines without polars: the serving benchmark rebuilds its catalog on a
    GPU host whose image lacks polars (benchmarks/serve_world.py)."""
    if n_interactions < 10:
        raise ValueError(f"n_interactions must be >= 10, got {n_interactions}")
    rng = np.random.default_rng(seed)
    n_items = n_items or int(np.clip(n_interactions // 20, 50, 2_000_000))
    n_topics = int(np.clip(n_items // 30, 4, 50_000))
    cat = catalog(rng, n_items, n_topics)
    cdf = zipf_cdf_by_topic(cat.item_topic, n_topics, alpha=0.9)
    succ = rng.integers(0, n_topics, size=(n_topics, 2))
    topic_cdf = np.cumsum(cat.topic_w) / cat.topic_w.sum()
    lens = _lengths(rng, n_interactions, mean_len)
    order = np.argsort(-lens, kind="stable").astype(np.int32 if len(lens) < 2**31 else np.int64)
    sorted_lens = lens[order]
    topics = np.searchsorted(topic_cdf, rng.random(len(lens))).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    del lens
    walk = _Walk(cdf, succ, topic_cdf, order, topics, offsets)
    items = np.empty(int(offsets[-1]), dtype=np.int32)
    for step in range(int(sorted_lens[0])):
        m = int(np.searchsorted(-sorted_lens, -step, side="left"))  # users with len > step
        m = int((sorted_lens > step).sum()) if m == 0 else m
        _step(rng, walk, step, m, items)
    del walk, order, sorted_lens, topics, cdf
    n_users = len(offsets) - 1
    bounds = list(range(0, n_users, chunk_users or CHUNK_USERS)) + [n_users]
    start = rng.integers(1_100_000_000, 1_500_000_000, size=n_users).astype(np.int32)
    # item and user keys are drawn last, below
    p = WorldPlan(
        cat, item_key=None, offsets=offsets, items=items, start=start, user_keys=(0, 0), bounds=bounds
    )
    sizes = [int(offsets[b] - offsets[a]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    for size in sizes:  # gaps: exponential(nnz), drawn in the chunks' pieces
        p.gap_states.append(dict(rng.bit_generator.state))
        rng.exponential(86_400 * 20, size=size)
    perm = rng.permutation(n_items)  # hide topic order from item keys
    for size in sizes:  # ratings: choice(nnz) is random(nnz), one draw per rating
        p.rating_states.append(dict(rng.bit_generator.state))
        _skip_doubles(rng, size)
    params = key_params(rng, n_items, 8)
    p.item_key = _numpy_item_keys(perm, params) if numpy_keys else _item_keys(perm, params)
    p.user_keys = key_params(rng, n_users, 12)
    return p


def generate(n_interactions: int, seed: int = 0, n_items: int | None = None, mean_len: float = 9.0) -> World:
    """Build the synthetic world whole: catalog, users and chronological histories (vectorized)."""
    p = plan(n_interactions, seed=seed, n_items=n_items, mean_len=mean_len)
    parts = list(p.chunks())
    cat, n = p.catalog, p.n_items
    return World(
        item_key=np.array(p.item_key.to_list(), dtype=str),
        title=cat.titles(0, n),
        brand=cat.brands(0, n),
        categories=cat.categories(0, n),
        item_topic=cat.item_topic,
        user_key=np.concatenate([c.user_key for c in parts]),
        user=np.concatenate([c.user + c.u0 for c in parts]),
        item=np.concatenate([c.item for c in parts]),
        timestamp=np.concatenate([c.timestamp for c in parts]),
        rating=np.concatenate([c.rating for c in parts]),
    )


def split_domains(
    world: World, target_item_share: float = 0.3, target_user_share: float = 0.3, seed: int = 0
) -> tuple[World, World]:
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
        item_key=world.item_key[item_mask],
        title=world.title[item_mask],
        brand=world.brand[item_mask],
        categories=world.categories[item_mask],
        item_topic=world.item_topic[item_mask],
        user_key=world.user_key[user_mask],
        user=user_map[world.user[keep]],
        item=item_map[world.item[keep]],
        timestamp=world.timestamp[keep],
        rating=world.rating[keep],
    )
