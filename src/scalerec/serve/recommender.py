"""The recommendation service, independent of HTTP: history keys in, scored item keys out.

Both the `recommend` CLI command and the HTTP API call this one class, so input rules (unknown keys
ignored and reported, at least one known key, history and k bounds, seen items excluded by default)
are the same everywhere. The model is reached only through the small `Encoder` protocol, so the
service is tested with a fake encoder and runs on a trained run through `run_encoder.RunEncoder`.
Item vectors are computed once at construction; cold-start items are encoded from their text and
appended to the index, so they are recommendable in the very next request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from scalerec.errors import UserError
from scalerec.serve.index import IndexConfig, ItemIndex
from scalerec.serve.timing import StageClock

Sample = tuple[np.ndarray | None, np.ndarray | None]
"""Encoded histories and, for an approximate query engine, the same from its float32 reference."""


class Encoder(Protocol):
    """What the service needs from a model. Item ids are 1..n for catalog items (row r = id r+1);
    the i-th item added through `encode_new_item` takes id n+i and may then appear in histories."""

    def encode_catalog(self) -> np.ndarray:
        """Vectors of all catalog items, float32 [n, d] (row r = item id r+1)."""
        ...

    def encode_history(self, ids: Sequence[int]) -> np.ndarray:
        """Query vector float32 [d] for a history of item ids, oldest first."""
        ...

    def encode_new_item(self, title: str, brand: str, categories: Sequence[str]) -> np.ndarray:
        """Vector float32 [d] of a new item from its text; registers it under the next id."""
        ...


def encode_histories(encoder: Encoder, histories: Sequence[Sequence[int]]) -> np.ndarray:
    """Query vectors [Q, d] for many histories: the encoder's own batched `encode_histories` when it
    has one (one model call for a whole micro-batch), else one `encode_history` call each."""
    batched = getattr(encoder, "encode_histories", None)
    if batched is not None:
        return np.asarray(batched(histories), dtype=np.float32)
    return np.stack([encoder.encode_history(h) for h in histories]).astype(np.float32)


@dataclass
class ServeConfig:
    """Limits and index settings of the service (CLI: `--set index.kind=ivf`, `--set max_k=50`)."""

    index: IndexConfig = field(default_factory=IndexConfig)
    """How item vectors are indexed (exact or FAISS), see IndexConfig."""
    max_k: int = field(default=100, metadata={"range": "[1, inf)"})
    """Largest k a request may ask for."""
    max_history: int = field(default=200, metadata={"range": "[1, inf)"})
    """Most item keys a history may hold."""
    max_batch: int = field(default=64, metadata={"range": "[1, inf)"})
    """Most requests in one POST /recommend/batch."""
    max_body_bytes: int = field(default=1_000_000, metadata={"range": "[1, inf)"})
    """Largest request body accepted by the HTTP server (larger → 413)."""
    max_key_chars: int = field(default=200, metadata={"range": "[1, inf)"})
    """Longest item key accepted."""
    max_new_items: int = field(default=10_000, metadata={"range": "[1, inf)"})
    """Most cold-start items `POST /items` may add while the service runs (each one grows the index
    and the model's token table in memory); past it the service answers 409."""
    server_timing: bool = False
    """Send each `POST /recommend` answer's stage times (parse, queue, resolve, encode, search, ...)
    in a `Server-Timing` header (`scalerec.serve.timing`); the serving benchmark turns it on."""

    def __post_init__(self) -> None:
        names = ("max_k", "max_history", "max_batch", "max_body_bytes", "max_key_chars", "max_new_items")
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Item:
    """Catalog metadata of one item."""

    key: str
    title: str
    brand: str = ""
    categories: list[str] = field(default_factory=list)
    cold_start: bool = False


@dataclass
class Scored:
    """One recommended item. A plain dataclass: orjson writes these directly, faster than dicts
    (3 µs for ten, against 5 µs for the dicts and 14 µs for slotted dataclasses)."""

    key: str
    title: str
    score: float


@dataclass
class Recommendation:
    """Top-k answer; `unknown` lists history keys that were ignored."""

    items: list[Scored]
    unknown: list[str]
    used: int
    timings: dict[str, float] = field(default_factory=dict, repr=False, compare=False)
    """Milliseconds per stage of the call that answered it (shared by a micro-batch; never sent
    as part of the answer body)."""
    window: tuple[float, float] = field(default=(0.0, 0.0), repr=False, compare=False)
    """`time.perf_counter()` when that call started and ended (to time the queue around it)."""


@dataclass
class Query:
    """One recommendation request."""

    history: list[str]
    k: int = 10
    exclude_seen: bool = True


class NotFound(UserError):
    """A key that is not in the catalog (HTTP 404)."""


class Conflict(UserError):
    """A new item whose key already exists, or one past `max_new_items` (HTTP 409)."""


class Recommender:
    """Top-k recommendations over a catalog, with cold-start additions."""

    def __init__(
        self,
        encoder: Encoder,
        items: Sequence[Item],
        cfg: ServeConfig | None = None,
        tune_histories: Sequence[Sequence[int]] | None = None,
    ) -> None:
        """`tune_histories` (item ids, e.g. real users' histories) are the queries the approximate
        index is tuned and measured on; default: random 5-item histories, which are easier than
        real traffic (a paper-1M text model: recall@10 0.95 on those, 0.93 on user histories)."""
        self.cfg = cfg or ServeConfig()
        self.encoder = encoder
        self.items = list(items)
        self.n_added = 0
        vectors = np.asarray(encoder.encode_catalog(), dtype=np.float32)
        (queries, truth), (held, held_truth) = self._sample_queries(tune_histories)
        self.index = ItemIndex.build(
            [it.key for it in self.items], vectors, self.cfg.index, queries, truth,
            held_out=None if held is None else (held, held_truth),
        )

    def _sample_queries(self, histories: Sequence[Sequence[int]] | None) -> tuple[Sample, Sample]:
        """Encoded histories to tune the approximate index on, and others (half as many) to measure
        its recall on afterwards — the tuner's own figure is optimistic, since it stops at the first
        width that passes on the histories it sees. Each as (queries, the same histories from the
        encoder's float32 reference when it serves an approximation, e.g. int8 queries, else None);
        (None, None) for an exact index, or held-out histories when `histories` has too few."""
        n = len(self.items)
        kind, want = self.cfg.index.kind, self.cfg.index.recall_queries
        if kind == "exact" or (kind == "auto" and n <= self.cfg.index.exact_threshold):
            return (None, None), (None, None)
        end = want + max(1, want // 2)  # the held-out histories are want..end
        if histories is None:
            rng = np.random.default_rng(self.cfg.index.seed)
            histories = rng.integers(1, n + 1, size=(end, 5)).tolist()
        held = [list(h) for h in histories[want:end]]
        return self._encode_sample([list(h) for h in histories[:want]]), self._encode_sample(held)

    def _encode_sample(self, sample: list[list[int]]) -> Sample:
        if not sample:
            return None, None
        reference = getattr(self.encoder, "reference_histories", None)
        truth = None if reference is None else reference(sample)
        queries = encode_histories(self.encoder, sample)
        return queries, None if truth is None else np.asarray(truth, np.float32)

    def __len__(self) -> int:
        return len(self.items)

    def check_k(self, k: int) -> None:
        if not 1 <= k <= self.cfg.max_k:
            raise UserError(f"k must be between 1 and {self.cfg.max_k}, got {k}")

    def resolve(self, history: Sequence[str]) -> tuple[list[int], list[str]]:
        """History keys → (known rows, oldest first; unknown keys). Raises UserError on bad histories,
        `NotFound` when no key is known (well-formed input about items that are not there: 404)."""
        if len(history) == 0:
            raise UserError("history is empty: give at least one item key")
        if len(history) > self.cfg.max_history:
            raise UserError(f"history has {len(history)} keys; the limit is {self.cfg.max_history}")
        rows, unknown = [], []
        for key in history:
            row = self.index.rows_by_key.get(key)
            if row is None:
                unknown.append(key)
            else:
                rows.append(row)
        if not rows:
            shown = ", ".join(repr(k) for k in unknown[:5])
            raise NotFound(f"none of the history keys is a known item ({shown})")
        return rows, unknown

    def recommend(self, history: Sequence[str], k: int = 10, exclude_seen: bool = True) -> Recommendation:
        """Top-k items after `history` (item keys, oldest first). Raises UserError on bad input."""
        result = self.recommend_batch([Query(list(history), k, exclude_seen)])[0]
        if isinstance(result, UserError):
            raise result
        return result

    def recommend_batch(self, queries: Sequence[Query]) -> list[Recommendation | UserError]:
        """Answer many queries with one index search; a bad query yields its UserError in place.
        Each answer carries the call's stage times (`Recommendation.timings`, ms): resolve (keys →
        rows), encode (history → query vector; the encoder's own split when it reports one),
        search (index + seen-item filtering), build (answer objects)."""
        clock = StageClock()
        resolved: list[Any] = []  # (rows, unknown keys) or the query's UserError
        for q in queries:
            try:
                self.check_k(q.k)
                resolved.append(self.resolve(q.history))
            except UserError as exc:
                resolved.append(exc)
        good = [i for i, r in enumerate(resolved) if not isinstance(r, UserError)]
        out: list[Recommendation | UserError] = list(resolved)  # errors stay in place
        if not good:
            return out
        clock.lap("resolve")
        vecs = encode_histories(self.encoder, [[r + 1 for r in resolved[i][0]] for i in good])
        clock.lap("encode")
        clock.add(getattr(self.encoder, "last_split", None))
        exclude = [resolved[i][0] if queries[i].exclude_seen else () for i in good]
        hits = self.index.search(vecs, max(queries[i].k for i in good), exclude)
        clock.lap("search")
        items = self.items
        answers = []
        for i, found in zip(good, hits, strict=True):
            rows, unknown = resolved[i]
            top = [Scored(items[r].key, items[r].title, s) for r, s in found[: queries[i].k]]
            answers.append((i, top, unknown, len(rows)))
        end = clock.lap("build")
        clock.ms["batch"] = float(len(good))
        for i, top, unknown, used in answers:
            out[i] = Recommendation(top, unknown, used, clock.ms, (clock.start, end))
        return out

    def add_item(self, key: str, title: str, brand: str = "", categories: Sequence[str] = ()) -> Item:
        """Encode a new item from its text and make it recommendable at once (cold start)."""
        if key in self.index.rows_by_key:
            raise Conflict(f"item key '{key}' already exists")
        if self.n_added >= self.cfg.max_new_items:
            raise Conflict(
                f"the service already holds {self.n_added} added items, its limit (max_new_items); "
                "retrain with the new items in the catalog or restart with a larger limit"
            )
        for name, text in [
            ("key", key),
            ("title", title),
            ("brand", brand),
            *(("categories", c) for c in categories),
        ]:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise UserError(f"item '{key!r}': field '{name}' is not valid Unicode text") from None
        vector = np.asarray(self.encoder.encode_new_item(title, brand, list(categories)), dtype=np.float32)
        if vector.shape != (self.index.dim,) or not np.all(np.isfinite(vector)):
            raise UserError(f"item '{key}': the encoder returned an unusable vector {vector.shape}")
        item = Item(key, title, brand, list(categories), cold_start=True)
        self.index.add(key, vector)
        self.items.append(item)
        self.n_added += 1
        return item

    def get_item(self, key: str) -> Item:
        row = self.index.rows_by_key.get(key)
        if row is None:
            raise NotFound(f"unknown item key '{key}'")
        return self.items[row]
