"""Item-embedding index: the top-k inner-product search behind every recommendation.

Small catalogs are searched exactly (chunked matmul + `torch.topk`, so memory stays bounded and the
answer is the true top-k). Above `exact_threshold` items a FAISS index (IVF-Flat by default, HNSW on
request) answers in about a millisecond; its probe width is tuned at build time on a sample of
queries until recall@10 against the exact answer reaches `target_recall`, and the measured recall is
kept in `report` so the server can print it at start-up. Rows are positions 0..n-1 in insertion
order; keys name them. `add` appends a row (cold-start items) and is visible to the next search.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from scalerec.errors import UserError

IndexKind = Literal["auto", "exact", "ivf", "hnsw"]


@dataclass
class IndexConfig:
    """How the item index is built."""

    kind: IndexKind = "auto"
    """'exact' (matmul), 'ivf' or 'hnsw' (FAISS), or 'auto' (exact up to exact_threshold items)."""
    exact_threshold: int = field(default=100_000, metadata={"range": "[0, inf)"})
    """Largest catalog searched exactly when kind='auto'."""
    target_recall: float = field(default=0.95, metadata={"range": "(0, 1]"})
    """Recall@10 vs exact that the approximate index is tuned to reach on the sample queries."""
    recall_queries: int = field(default=200, metadata={"range": "[1, inf)"})
    """Number of sample queries used to tune and measure recall@10 at build time."""
    chunk_rows: int = field(default=131_072, metadata={"range": "[1, inf)"})
    """Item rows scored per matmul chunk in exact search (bounds memory)."""
    ivf_codes: Literal["flat", "sq8", "fp16"] = "sq8"
    """How IVF stores vectors: float32 ('flat'), 8-bit ('sq8', 4x less memory to scan per query)
    or float16. The probe width is tuned to target_recall either way."""
    ivf_lists: int = field(default=0, metadata={"range": "[0, inf)"})
    """IVF list count; 0 = 4·sqrt(n) (about 250 vectors per list at 1M items)."""
    hnsw_m: int = field(default=32, metadata={"range": "[4, inf)"})
    """HNSW graph degree."""
    seed: int = field(default=0, metadata={"range": "[0, inf)"})
    """Seed for the training sample and the recall queries."""

    def __post_init__(self) -> None:
        if self.exact_threshold < 0:
            raise ValueError(f"exact_threshold must be >= 0, got {self.exact_threshold}")
        if not 0.0 < self.target_recall <= 1.0:
            raise ValueError(f"target_recall must be in (0, 1], got {self.target_recall}")
        if self.recall_queries < 1 or self.chunk_rows < 1 or self.hnsw_m < 4:
            raise ValueError("recall_queries and chunk_rows must be >= 1 and hnsw_m >= 4")
        if self.ivf_codes not in ("flat", "sq8", "fp16") or self.ivf_lists < 0:
            raise ValueError(
                f"ivf_codes must be flat/sq8/fp16 and ivf_lists >= 0, got {self.ivf_codes}, {self.ivf_lists}"
            )


def exact_topk(
    queries: np.ndarray, vectors: np.ndarray, k: int, chunk_rows: int = 131_072
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product. queries [Q,d], vectors [N,d] → (scores [Q,k'], rows [Q,k']),
    k' = min(k, N), sorted by descending score; the scores matrix is built one chunk of rows at a time."""
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    n = vectors.shape[0]
    k = min(k, n)
    best_s = torch.full((q.shape[0], 0), -float("inf"))
    best_i = torch.zeros((q.shape[0], 0), dtype=torch.int64)
    for start in range(0, n, chunk_rows):
        block = torch.from_numpy(vectors[start : start + chunk_rows])
        s, i = torch.topk(q @ block.T, min(k, block.shape[0]), dim=1)  # [Q, k]
        best_s, pos = torch.topk(torch.cat([best_s, s], 1), min(k, best_s.shape[1] + s.shape[1]), dim=1)
        best_i = torch.gather(torch.cat([best_i, i + start], 1), 1, pos)
    return best_s.numpy(), best_i.numpy()


_search_threads: int | None = None  # what set_search_threads asked for; None = library defaults


def set_search_threads(n: int) -> None:
    """Threads torch and FAISS may use per search (process-wide). A server wants 1: requests are
    already batched, the event loop needs the other core, and idle OpenMP threads spin on CPU.
    OpenMP keeps the count per thread, so threads started later call `adopt_search_threads`."""
    global _search_threads
    _search_threads = n
    torch.set_num_threads(n)
    adopt_search_threads()


def adopt_search_threads() -> None:
    """Apply `set_search_threads` in the calling thread (FAISS's OpenMP count is per thread: a
    thread that never calls this searches on every core, whatever the main thread set)."""
    if _search_threads is None:
        return
    try:
        import faiss
    except ImportError:  # exact-only installs
        return
    faiss.omp_set_num_threads(_search_threads)


def recall_at(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean |approx ∩ exact| / |exact| over rows (both [Q,k] row ids; -1 = missing)."""
    hits = [
        len(set(a.tolist()) & set(e.tolist())) / max(len(e), 1) for a, e in zip(approx, exact, strict=True)
    ]
    return float(np.mean(hits)) if hits else 1.0


@dataclass
class ItemIndex:
    """Keyed top-k index over item vectors. Build with `ItemIndex.build`."""

    cfg: IndexConfig
    kind: Literal["exact", "ivf", "hnsw"]
    keys: list[str]
    rows_by_key: dict[str, int]
    dim: int
    _vectors: np.ndarray  # [capacity, d]; rows >= len(keys) are unused (exact only)
    _faiss: Any = None  # faiss.Index (untyped), built by `_build_faiss`
    report: dict = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        keys: Sequence[str],
        vectors: np.ndarray,
        cfg: IndexConfig | None = None,
        sample_queries: np.ndarray | None = None,
        truth_queries: np.ndarray | None = None,
    ) -> ItemIndex:
        """Index `vectors` [N,d] (row r named keys[r]). `sample_queries` [Q,d] (e.g. encoded histories)
        tune and measure the approximate index; default: sampled catalog rows plus noise.
        `truth_queries` [Q,d]: the same histories encoded by the reference model (float32), when the
        served queries come from a faster, approximate encoder (int8): recall@10 is then measured
        against the exact answer to the reference queries, so it includes the encoder's error."""
        cfg = cfg or IndexConfig()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise UserError(f"index: expected {len(keys)} vectors as [N, d], got shape {vectors.shape}")
        rows_by_key = {key: r for r, key in enumerate(keys)}
        if len(rows_by_key) != len(keys):
            raise UserError("index: item keys must be unique")
        kind = cfg.kind
        if kind == "auto":
            kind = "exact" if len(keys) <= cfg.exact_threshold else "ivf"
        index = cls(cfg, kind, list(keys), rows_by_key, vectors.shape[1], vectors)
        t0 = time.perf_counter()
        if kind != "exact":
            truth = None if truth_queries is None or sample_queries is None else truth_queries
            index._build_faiss(vectors, _queries(vectors, sample_queries, cfg), truth)
        index.report.update(
            kind=kind, n_items=len(keys), dim=index.dim, build_s=round(time.perf_counter() - t0, 3)
        )
        if kind == "exact":
            index.report["recall@10"] = 1.0
        return index

    def __len__(self) -> int:
        return len(self.keys)

    def _build_faiss(self, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray | None) -> None:
        try:
            import faiss
        except ImportError:
            raise UserError(
                f"a catalog of {len(vectors):,} items needs the approximate index (FAISS): "
                "pip install 'scalerec[serve]', or raise index.exact_threshold"
            ) from None

        n, d = vectors.shape
        rng = np.random.default_rng(self.cfg.seed)
        # build on every core this process may use (FAISS defaults to the machine's count, which
        # oversubscribes a process pinned to fewer cores); the server sets its search threads after
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
        faiss.omp_set_num_threads(len(usable))
        if self.kind == "ivf":
            nlist = self.cfg.ivf_lists or int(max(16, min(n // 64, 4 * np.sqrt(n))))
            codes = {"flat": "Flat", "sq8": "SQ8", "fp16": "SQfp16"}[self.cfg.ivf_codes]
            index = faiss.index_factory(d, f"IVF{nlist},{codes}", faiss.METRIC_INNER_PRODUCT)
            sample = vectors[np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))]
            index.train(sample)
            self.report.update(nlist=nlist, codes=self.cfg.ivf_codes)
        else:
            index = faiss.IndexHNSWFlat(d, self.cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
        index.add(vectors)
        self._faiss = index
        self._tune(queries, vectors, truth)
        self._vectors = np.zeros((0, d), dtype=np.float32)  # FAISS keeps its own copy

    def _tune(self, queries: np.ndarray, vectors: np.ndarray, reference: np.ndarray | None) -> None:
        """Smallest probe width (IVF nprobe / HNSW efSearch) whose recall@10 on `queries` reaches the
        target: doubling until it passes, then bisection between the last failing and first passing
        width (search cost grows linearly in the width, so every step saved is latency saved).
        Truth is the exact top-10 of `reference` (the same queries from the reference encoder) when
        given, else of `queries` themselves."""
        ref = queries if reference is None else np.ascontiguousarray(reference[: len(queries)], np.float32)
        truth = exact_topk(ref, vectors, 10, self.cfg.chunk_rows)[1]
        knob = "nprobe" if self.kind == "ivf" else "efSearch"
        limit = self.report.get("nlist", 4096) if self.kind == "ivf" else 4096
        recalls: dict[int, float] = {}

        def recall(width: int) -> float:
            if width not in recalls:
                self._set_knob(width)
                recalls[width] = recall_at(self._faiss.search(queries, 10)[1], truth)
            return recalls[width]

        low, high = 0, 4  # recall(low) < target <= recall(high), once found
        while recall(high) < self.cfg.target_recall and high < limit:
            low, high = high, min(limit, high * 2)
        if recall(high) >= self.cfg.target_recall:
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (low, mid) if recall(mid) >= self.cfg.target_recall else (mid, high)
        self._set_knob(high)
        self.report.update({knob: high, "recall@10": round(recall(high), 4), "recall_queries": len(queries)})

    def set_width(self, width: int) -> None:
        """Search at this probe width (IVF nprobe / HNSW efSearch) instead of the tuned one; the
        report keeps the tuned width and its recall under `tuned_*` (they no longer describe it)."""
        if self._faiss is None:
            raise UserError("an exact index has no probe width to set")
        if width < 1:
            raise UserError(f"probe width must be >= 1, got {width}")
        knob = "nprobe" if self.kind == "ivf" else "efSearch"
        self.report.setdefault(f"tuned_{knob}", self.report.get(knob))
        self.report.setdefault("tuned_recall@10", self.report.pop("recall@10", None))
        self._set_knob(width)
        self.report[knob] = width

    def _set_knob(self, value: int) -> None:
        if self.kind == "ivf":
            self._faiss.nprobe = value
        else:
            self._faiss.hnsw.efSearch = value

    def add(self, key: str, vector: np.ndarray) -> int:
        """Append one item; returns its row. Searchable by the next `search` call."""
        if key in self.rows_by_key:
            raise UserError(f"item key '{key}' is already in the index")
        vec = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, self.dim))
        row = len(self.keys)
        if self._faiss is not None:
            self._faiss.add(vec)
        else:
            if row >= self._vectors.shape[0]:
                grown = np.zeros((max(16, 2 * self._vectors.shape[0]), self.dim), dtype=np.float32)
                grown[:row] = self._vectors[:row]
                self._vectors = grown
            self._vectors[row] = vec[0]
        self.keys.append(key)
        self.rows_by_key[key] = row
        return row

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[Sequence[int]] | None = None
    ) -> list[list[tuple[int, float]]]:
        """Top-k rows per query [Q,d] as lists of (row, score), best first, skipping `exclude[q]` rows."""
        queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self.dim))
        exclude = exclude or [()] * len(queries)
        extra = max((len(e) for e in exclude), default=0)
        want = min(k + extra, len(self.keys))
        if self._faiss is not None:
            scores, rows = self._faiss.search(queries, want)
        else:
            scores, rows = exact_topk(queries, self._vectors[: len(self.keys)], want, self.cfg.chunk_rows)
        keep = rows >= 0
        if extra:  # one vectorized membership test for the whole batch: [Q, want, 1] vs [Q, 1, E]
            skip = np.full((len(exclude), extra), -1, dtype=rows.dtype)
            for q, e in enumerate(exclude):
                skip[q, : len(e)] = e
            keep &= ~(rows[:, :, None] == skip[:, None, :]).any(axis=2)
        # kept hits moved to the front of each row (stable, so still best first), then the first k:
        # two `tolist` calls for the whole batch instead of four numpy calls per query
        first = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # [Q, k']
        top_rows = np.take_along_axis(rows, first, axis=1).tolist()
        top_scores = np.take_along_axis(scores, first, axis=1).tolist()
        counts = np.minimum(keep.sum(axis=1), k).tolist()
        return [
            list(zip(r[:c], s[:c], strict=True)) for r, s, c in zip(top_rows, top_scores, counts, strict=True)
        ]


def _queries(vectors: np.ndarray, given: np.ndarray | None, cfg: IndexConfig) -> np.ndarray:
    """Recall-measurement queries: the given ones, else means of 3 random catalog rows."""
    if given is not None:
        return np.ascontiguousarray(given[: cfg.recall_queries], dtype=np.float32)
    rng = np.random.default_rng(cfg.seed + 1)
    rows = rng.integers(0, vectors.shape[0], size=(cfg.recall_queries, 3))
    return np.ascontiguousarray(vectors[rows].mean(axis=1), dtype=np.float32)
