"""A synthetic world with a known answer: next-item loss floor computable in closed form.

Why it exists (issue 18, item 3): the old generator's 1,666 topics × 2 successors were learnt by the
smallest model, so no sweep on it could show size scaling, and its floor was unknown. Here:

* `n_topics` topics (~1e5) with Zipf weights π_k ∝ (k+1)^-zipf; each topic owns `variants` items
  (catalog = n_topics × variants, ~1e6), picked inside the topic with fixed weights q.
* Topics follow a **second-order** chain. The context (previous topic a, current topic b) fixes a
  *base* topic β(a, b) ~ π through a hash (a rule table of up to n_topics² entries that is never
  stored); the next topic is β + j (mod n_topics) with j ~ p over `successors` offsets. The first
  topic of a user is drawn from π; its context is (START, z_1). The previous item enters only
  through a class: its topic's (`context = "topic"`, world_v4) or its variant's (`"variant"`,
  world_v5: independent of every topic, so no target is easier than another); with
  `rule_variant` the current item's variant is part of the key too.
* Since successor windows never collide and q is the same for every topic, every target has the
  same conditional entropy: **Bayes floor = H(p) + H(q)** nats, exactly, whatever the context
  distribution (`bayes_floor`). `bayes_logprob` is the optimal predictor, used to check it by
  Monte Carlo.
* Why it keeps rewarding larger models: a model that has not memorised the rule of a context can
  do no better than a fallback such as the topic marginal; each memorised rule removes
  f(c)·KL(c) nats, and rule usage f(c) is heavy-tailed (Zipf topics → Zipf-like pairs). A model
  that can hold R rules sits at floor + Σ_{c beyond R} f(c)·KL(c), a power law in R over as many
  decades as the usage tail spans (the quantization model of Michaud et al., 2023).
  `memorisation_curve` measures that curve on sampled sequences.
* Item text: a title is its topic's own words (a per-topic vocabulary) and a variant word, so the
  text encoder sees the structure and can express the optimal predictor (`title_token_ids`).

Everything is a pure function of (seed, user counter, position): a counter-based hash, written
only with operators that numpy and torch share, so `scalerec.train.world_stream` generates the
same users on the GPU without any state but a counter — streams never repeat an example and
memory stays bounded. This module is numpy only (the data "read" layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# signed-int64 forms of the splitmix64 constants, so numpy and torch wrap them identically
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_M1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_M2 = 0x94D049BB133111EB - (1 << 64)
# stream tags: independent hash streams for each random choice
RULE, FIRST, SUCC, VARIANT, TRAIN_USER, EVAL_USER, WORDS = 1, 2, 3, 4, 5, 6, 7
WORLD_FILE = "world.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class WorldConfig:
    """The world's fixed structure (its seed, sizes and exponents); users are drawn from it."""

    n_topics: int = 100_000
    """Topics; the rule table has up to n_topics² contexts."""
    variants: int = 10
    """Items per topic; catalog size = n_topics × variants."""
    successors: int = 4
    """Next-topic window per context (entropy H(p))."""
    zipf: float = 1.2
    """Exponent of topic popularity π and of the rule-base draw (1.2: the memorisation curve is a
    power law of slope ≈ -0.4 over 2+ decades of rules; 1.1 bends, 1.4+ saturates within 1e3 rules)."""
    succ_zipf: float = 1.0
    """Exponent of p over the successor window."""
    variant_zipf: float = 1.0
    """Exponent of q over a topic's variants."""
    length: int = 51
    """Items per user (51 = 50 inputs → 50 targets: full training windows)."""
    session: int = 4
    """Every `session`-th position starts a fresh topic drawn from π (a new session); eval targets
    (the last two) are rule positions. 0: no session starts (every target t >= 1 is a rule target,
    and the two eval targets are drawn from the same stationary context distribution)."""
    context_classes: int = 4
    """The previous item enters a rule only through its class (see `context`, mod this): rules are
    (class, current topic) pairs, n_topics × (classes + 1) in all (1 = a first-order chain)."""
    context: str = "topic"
    """Where the previous item's class comes from. "topic" (world_v4): its topic mod
    `context_classes` — but the current topic is a rule output of that same topic, so except right
    after a session start it already tells much of the class, and targets differ in how much
    second-order lookup they need (world_v4's validation target, one after a session start, needed
    all of it; its test target little). "variant": its variant mod `context_classes`, drawn
    independently of every topic, so every rule target needs the same lookup."""
    rule_variant: bool = False
    """The current item's variant enters the rule key too: rules are (class, topic, variant)
    triples, `variants`x more of them over the same catalog. A text item vector is a sum of its
    topic word and its variant word, so no per-item embedding can hold a triple's successor: the
    network's own (non-embedding) parameters must, which is the capacity that N counts."""
    title_words: int = 1
    """Words of a topic's own vocabulary in each of its item titles."""
    seed: int = 0
    """World seed: rules and titles (the training stream has its own seed)."""

    def __post_init__(self) -> None:
        if self.n_topics < 2 or self.variants < 1 or not 1 <= self.successors < self.n_topics:
            raise ValueError("world: need n_topics >= 2, variants >= 1, 1 <= successors < n_topics")
        bad_session = self.session == 1 or self.session < 0
        if self.length < 3 or self.title_words < 1 or self.context_classes < 1 or bad_session:
            raise ValueError("world: need length >= 3, title_words, context_classes >= 1, session 0 or >= 2")
        if self.context not in ("topic", "variant"):
            raise ValueError(f"world: context must be 'topic' or 'variant', not {self.context!r}")
        if self.session and ((self.length - 1) % self.session == 0 or (self.length - 2) % self.session == 0):
            raise ValueError(f"world: length {self.length} puts a session start on an eval target")

    @property
    def n_items(self) -> int:
        return self.n_topics * self.variants


def mix(x: Any) -> Any:
    """splitmix64 finaliser on int64 arrays (numpy or torch), logical shifts emulated by masks."""
    x = x * _M1
    x = x ^ ((x >> 30) & ((1 << 34) - 1))
    x = x * _M2
    x = x ^ ((x >> 27) & ((1 << 37) - 1))
    x = x * _M1
    return x ^ ((x >> 31) & ((1 << 33) - 1))


def hash_keys(seed: int, tag: int, *keys: Any) -> Any:
    """One int64 hash per element of the broadcast `keys` (arrays of the same module)."""
    h = mix(keys[0] * 0 + _i64((seed * 1_000_003 + tag) * _GOLDEN))
    for k in keys:
        h = mix(h ^ (k + _GOLDEN))
    return h


def _i64(v: int) -> int:
    """A Python int wrapped to the signed int64 range (numpy refuses larger literals)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def uniform(h: Any) -> Any:
    """53 random bits of an int64 hash → float64 in [0, 1) (torch would default to float32)."""
    bits = (h >> 11) & ((1 << 53) - 1)
    bits = bits.double() if hasattr(bits, "double") else bits.astype(np.float64)
    return bits * (1.0 / (1 << 53))


def context_class(cfg: WorldConfig, prev_topic: Any, prev_variant: Any, cur_variant: Any = 0) -> Any:
    """The rule key besides the current topic (int64 arrays, numpy or torch): the class of the item
    before the current one (prev_topic >= n_topics marks START, class `context_classes`), and with
    `rule_variant` the current item's variant too."""
    source = prev_variant if cfg.context == "variant" else prev_topic
    cls_ = source % cfg.context_classes
    cls_ = cls_ + (cfg.context_classes - cls_) * (prev_topic >= cfg.n_topics)
    return cls_ + (cfg.context_classes + 1) * cur_variant if cfg.rule_variant else cls_


def is_session_start(cfg: WorldConfig, t: int) -> bool:
    return bool(cfg.session) and t % cfg.session == 0


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return w / w.sum()


def cdf(weights: np.ndarray) -> np.ndarray:
    """float64 CDF with last value exactly 1 (searchsorted of u < 1 stays in range)."""
    c = np.cumsum(weights)
    c /= c[-1]
    c[-1] = 1.0
    return c


def entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@dataclass
class World:
    """The tables a world needs (all O(n_topics)): π, p, q as weights and CDFs."""

    cfg: WorldConfig
    topic_p: np.ndarray
    succ_p: np.ndarray
    variant_p: np.ndarray

    @classmethod
    def build(cls, cfg: WorldConfig) -> World:
        return cls(
            cfg,
            zipf_weights(cfg.n_topics, cfg.zipf),
            zipf_weights(cfg.successors, cfg.succ_zipf),
            zipf_weights(cfg.variants, cfg.variant_zipf),
        )

    # -- the generative process ------------------------------------------------------------------
    def base(self, prev: np.ndarray, cur: np.ndarray, prev_variant: np.ndarray | None = None,
             cur_variant: np.ndarray | None = None) -> np.ndarray:
        """Rule table β(class of the previous item, current topic[, its variant]) → base topic,
        drawn from π by the world's hash (prev = START ok; the variants are needed when context =
        "variant" / rule_variant)."""
        prev = np.asarray(prev, dtype=np.int64)
        pv = np.zeros_like(prev) if prev_variant is None else np.asarray(prev_variant, dtype=np.int64)
        cv = np.zeros_like(prev) if cur_variant is None else np.asarray(cur_variant, dtype=np.int64)
        return self._base_of_class(context_class(self.cfg, prev, pv, cv), cur)

    def sequences(self, users: np.ndarray, stream_seed: int, tag: int = TRAIN_USER) -> np.ndarray:
        """int64 [U, length] item ids (1-based) of users with counters `users` int64 [U]."""
        c, users = self.cfg, np.asarray(users, dtype=np.int64)
        pos = np.arange(c.length, dtype=np.int64)
        key = hash_keys(stream_seed, tag, users)[:, None]
        u_first = uniform(hash_keys(self.cfg.seed, FIRST, key[:, 0]))
        u_succ = uniform(hash_keys(self.cfg.seed, SUCC, key, pos[None, :]))
        u_var = uniform(hash_keys(self.cfg.seed, VARIANT, key, pos[None, :]))
        variant = np.searchsorted(cdf(self.variant_p), u_var, side="right").astype(np.int64)
        topics = np.empty((len(users), c.length), dtype=np.int64)
        topics[:, 0] = np.searchsorted(cdf(self.topic_p), u_first, side="right")
        prev = np.full(len(users), c.n_topics, dtype=np.int64)  # START
        prev_v = np.zeros(len(users), dtype=np.int64)
        succ_cdf = cdf(self.succ_p)
        topic_cdf = cdf(self.topic_p)
        for t in range(1, c.length):
            if is_session_start(c, t):
                topics[:, t] = np.searchsorted(topic_cdf, u_succ[:, t], side="right")
            else:
                j = np.searchsorted(succ_cdf, u_succ[:, t], side="right")
                topics[:, t] = (self.base(prev, topics[:, t - 1], prev_v, variant[:, t - 1]) + j) % c.n_topics
            prev, prev_v = topics[:, t - 1], variant[:, t - 1]
        return 1 + topics * c.variants + variant

    # -- the known answer -----------------------------------------------------------------------
    def floor_at(self, position: int) -> float:
        """Optimal cross-entropy (nats) of the item at 0-based `position` >= 1 given the ones before:
        H(π) + H(q) where a session starts, H(p) + H(q) elsewhere."""
        topic = entropy(self.topic_p) if is_session_start(self.cfg, position) else entropy(self.succ_p)
        return topic + entropy(self.variant_p)

    def bayes_floor(self) -> float:
        """The evaluation floor: validation and test targets (the last two items) are rule positions."""
        return self.floor_at(self.cfg.length - 1)

    def train_floor(self) -> float:
        """Mean floor over every target of a full training window (positions 1 … length-1)."""
        return float(np.mean([self.floor_at(t) for t in range(1, self.cfg.length)]))

    def topic_of(self, items: np.ndarray) -> np.ndarray:
        return (np.asarray(items, dtype=np.int64) - 1) // self.cfg.variants

    def bayes_logprob(self, seqs: np.ndarray) -> np.ndarray:
        """float64 [U, length-1]: log P*(item t | items < t) of the optimal predictor, t = 1 … length-1."""
        c = self.cfg
        topics, variants = self.topic_of(seqs), (np.asarray(seqs, dtype=np.int64) - 1) % c.variants
        prev = np.concatenate([np.full((len(seqs), 1), c.n_topics), topics[:, :-2]], axis=1)
        prev_v = np.concatenate([np.zeros((len(seqs), 1), np.int64), variants[:, :-2]], axis=1)
        base = self.base(prev, topics[:, :-1], prev_v, variants[:, :-1])
        j = (topics[:, 1:] - base) % c.n_topics
        v = variants[:, 1:]
        p = np.where(j < c.successors, self.succ_p[np.minimum(j, c.successors - 1)], 0.0)
        fresh = np.array([is_session_start(c, t) for t in range(1, seqs.shape[1])])[None, :]
        p = np.where(fresh, self.topic_p[topics[:, 1:]], p)
        return np.log(p) + np.log(self.variant_p[v])

    def next_item_distribution(self, history: np.ndarray) -> np.ndarray:
        """float64 [n_items + 1] (index 0 = padding): P*(next | history) over the whole catalog,
        built independently of `bayes_logprob` (the Monte-Carlo test compares the two)."""
        c = self.cfg
        topics = self.topic_of(history)
        out = np.zeros(c.n_items + 1)
        if is_session_start(c, len(history)):
            out[1:] = np.outer(self.topic_p, self.variant_p).ravel()
            return out
        prev = np.int64(c.n_topics) if len(topics) < 2 else topics[-2]
        prev_v = 0 if len(topics) < 2 else (int(history[-2]) - 1) % c.variants
        cur_v = (int(history[-1]) - 1) % c.variants
        base = int(self.base(np.array([prev]), topics[-1:], np.array([prev_v]), np.array([cur_v]))[0])
        for j, pj in enumerate(self.succ_p):
            z = (base + j) % c.n_topics
            out[1 + z * c.variants : 1 + (z + 1) * c.variants] += pj * self.variant_p
        return out

    def memorisation_curve(self, n_users: int, rules: list[int], stream_seed: int = 0) -> list[dict]:
        """Excess loss over the floor at rule positions of a predictor that knows the R most used
        rules and falls back to the topic marginal elsewhere, from `n_users` sampled users: the
        curve a model of growing capacity walks down (why size keeps paying off)."""
        c = self.cfg
        seqs = self.sequences(np.arange(n_users), stream_seed)
        topics, variants = self.topic_of(seqs), (seqs - 1) % c.variants
        prev = np.concatenate([np.full((n_users, 1), c.n_topics), topics[:, :-2]], axis=1)
        prev_v = np.concatenate([np.zeros((n_users, 1), np.int64), variants[:, :-2]], axis=1)
        rule_pos = np.array([not is_session_start(c, t) for t in range(1, c.length)])
        prev, cur = prev[:, rule_pos].ravel(), topics[:, :-1][:, rule_pos].ravel()
        cls_ = context_class(c, prev, prev_v[:, rule_pos].ravel(), variants[:, :-1][:, rule_pos].ravel())
        marginal = np.bincount(topics[:, 1:][:, rule_pos].ravel(), minlength=c.n_topics) + 0.5
        marginal = marginal / marginal.sum()
        keys, counts = np.unique(cls_ * c.n_topics + cur, return_counts=True)
        base = self._base_of_class(keys // c.n_topics, keys % c.n_topics)
        window = (base[:, None] + np.arange(c.successors)[None, :]) % c.n_topics
        kl = (self.succ_p[None, :] * np.log(self.succ_p[None, :] / marginal[window])).sum(1)
        order = np.argsort(-counts, kind="stable")
        gain = (counts[order] * kl[order]) / counts.sum()
        tail = np.concatenate([np.cumsum(gain[::-1])[::-1], [0.0]])
        return [{"rules": r, "excess_nats": float(tail[min(r, len(gain))])} for r in rules]

    def _base_of_class(self, cls_: np.ndarray, cur: np.ndarray) -> np.ndarray:
        """β for a context given by its class directly (the rule table's own key)."""
        u = uniform(hash_keys(self.cfg.seed, RULE, np.asarray(cls_, np.int64), cur))
        return np.searchsorted(cdf(self.topic_p), u, side="right").astype(np.int64)

    # -- item text ------------------------------------------------------------------------------
    def vocabulary(self) -> list[str]:
        """Token strings by id: [PAD], [UNK], each topic's own words, then the variant words."""
        n_topic_words = self.cfg.n_topics * self.cfg.title_words
        return [
            "[PAD]",
            "[UNK]",
            *[_word(i) for i in range(n_topic_words)],
            *_variant_words(self.cfg.variants),
        ]

    def title_token_ids(self, items: np.ndarray) -> np.ndarray:
        """int32 [n, title_words + 1]: each item's title as word ids — its topic's own words, then
        its variant word. Mean pooling + a linear adapter can then score items as P(topic)·P(variant),
        the exact form of the optimal predictor, so the text encoder can reach the floor."""
        c = self.cfg
        items = np.asarray(items, dtype=np.int64).ravel()
        topics, variant = self.topic_of(items), (items - 1) % c.variants
        topic_words = 2 + topics[:, None] * c.title_words + np.arange(c.title_words)[None, :]
        variant_word = 2 + c.n_topics * c.title_words + variant
        return np.concatenate([topic_words, variant_word[:, None]], axis=1).astype(np.int32)

    def titles(self, items: np.ndarray) -> list[str]:
        """Item titles as text (what a user or the items table sees)."""
        vocab = self.vocabulary()
        return [" ".join(vocab[t] for t in row) for row in self.title_token_ids(items)]


_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "be", "do", "fu", "gi", "ha", "jo", "pe", "su")


def _word(i: int) -> str:
    """A pronounceable, unique word for index i (base-16 digits → syllables)."""
    w = ""
    while True:
        w += _SYLLABLES[i % 16]
        i //= 16
        if i == 0:
            return w


def _variant_words(n: int) -> list[str]:
    return [f"model{i}" for i in range(n)]
