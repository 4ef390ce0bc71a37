"""Item-embedding index: the top-k inner-product search behind every recommendation.

Small catalogs are searched exactly (chunked matmul + `torch.topk`, so memory stays bounded and the
answer is the true top-k). Above `exact_threshold` items a FAISS index (IVF by default, HNSW on
request) answers in about a millisecond; its probe width is tuned at build time on a sample of
queries until recall@10 against the exact answer reaches `target_recall`, and the measured recall is
kept in `report` so the server can print it at start-up. Rows are positions 0..n-1 in insertion
order; keys name them. `add` appends a row (cold-start items) and is visible to the next search.

IVF codes trade scan cost for accuracy: float32/fp16/sq8 vectors are scanned one dimension at a
time, while 4-bit fast-scan PQ ('pq4fs') scores a list from SIMD-register look-up tables, several
times less work per vector. Its codes quantize each vector's residual to its list's centroid (FAISS
'fsr'), not the vector itself: 16 centroids per 2 dimensions cannot resolve items that differ by
less than the spread between lists (a paper-1M model's item vectors share a component of 0.86 of
their norm; coding them whole, recall@10 stayed at 0.74 with every list scanned). Its scores are
still coarse, so it is re-ranked exactly (`ivf_refine`): the base index returns k x k_factor
candidates and their stored vectors pick the top k. The tuner then
sets two widths, nprobe (which lists are scanned, so which items can be found at all) and k_factor
(how many of the coarse scores' best survive to the exact re-rank).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from scalerec.errors import UserError

IndexKind = Literal["auto", "exact", "ivf", "hnsw"]
IvfCodes = Literal["flat", "sq8", "fp16", "pq4fs"]
IvfRefine = Literal["auto", "none", "flat", "fp16"]
IVF_CODES: tuple[str, ...] = ("flat", "sq8", "fp16", "pq4fs")
IVF_REFINES: tuple[str, ...] = ("auto", "none", "flat", "fp16")
MAX_K_FACTOR = 128
"""Re-rank factor nprobe is first tuned at: 1280 candidates for a top 10, still a small cost next to
scanning a few hundred lists (on 1M paper-1M vectors, one core: k_factor 59 -> 128 adds ~0.17 ms
to a ~1 ms search; recall there needed 59, so 64 would have been too tight a cap)."""
K_FACTOR_LIMIT = 2048
"""Where the tuner stops raising that cap (x4 at a time) when even every list scanned misses the
target: on a CPU-trained paper-1M's 1M vectors, recall@10 0.97 needed more than 128 (0.967 at
full probe), while 0.96 was reached at nprobe 462 with k_factor 512."""


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
    ivf_codes: IvfCodes = "sq8"
    """How IVF stores vectors: float32 ('flat'), 8-bit ('sq8', 4x less memory to scan per query),
    float16, or 4-bit fast-scan PQ ('pq4fs', pq_m codes of 4 bits per vector, re-ranked exactly).
    The probe width is tuned to target_recall either way."""
    ivf_lists: int = field(default=0, metadata={"range": "[0, inf)"})
    """IVF list count; 0 = 4·sqrt(n) (about 250 vectors per list at 1M items)."""
    ivf_refine: IvfRefine = "auto"
    """Exact re-rank of the IVF candidates by stored vectors: 'flat' (float32), 'fp16', 'none', or
    'auto' ('flat' for pq4fs, whose 4-bit scores alone rarely order the top 10 right; else 'none')."""
    refine_k_factor: int = field(default=0, metadata={"range": "[0, inf)"})
    """Candidates re-ranked per result (k x k_factor); 0 = the smallest that reaches target_recall."""
    pq_m: int = field(default=0, metadata={"range": "[0, inf)"})
    """pq4fs: sub-quantizers per vector (must divide the dimension); 0 = dim/2 (2 dims per code)."""
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
        if self.ivf_codes not in IVF_CODES or self.ivf_lists < 0:
            raise ValueError(
                f"ivf_codes must be one of {'/'.join(IVF_CODES)} and ivf_lists >= 0, "
                f"got {self.ivf_codes}, {self.ivf_lists}"
            )
        if self.ivf_refine not in IVF_REFINES:
            raise ValueError(f"ivf_refine must be one of {'/'.join(IVF_REFINES)}, got {self.ivf_refine}")
        if self.refine_k_factor < 0 or self.pq_m < 0:
            raise ValueError(f"refine_k_factor, pq_m must be >= 0, got {self.refine_k_factor}, {self.pq_m}")
        if self.refine_k_factor and self.refine == "none":
            raise ValueError(f"refine_k_factor={self.refine_k_factor} needs a re-rank (ivf_refine flat/fp16)")
        if self.pq_m and self.ivf_codes != "pq4fs":
            raise ValueError(f"pq_m applies to ivf_codes='pq4fs' only, got ivf_codes={self.ivf_codes!r}")

    @property
    def refine(self) -> str:
        """The re-rank 'auto' resolves to for these codes: 'flat', 'fp16' or 'none'."""
        if self.ivf_refine != "auto":
            return self.ivf_refine
        return "flat" if self.ivf_codes == "pq4fs" else "none"

    def ivf_factory(self, n: int, d: int) -> str:
        """The FAISS index_factory string of the IVF index for n vectors of width d (e.g.
        'IVF4000,PQ128x4fsr,RFlat'); a pq_m that does not divide d is the user's error."""
        nlist = self.ivf_lists or int(max(16, min(n // 64, 4 * np.sqrt(n))))
        if self.ivf_codes == "pq4fs":
            m = self.pq_m or max(1, d // 2)
            if d % m:
                raise UserError(f"index.pq_m={m} must divide the vector width {d}")
            codes = f"PQ{m}x4fsr"  # r: residual codes (module doc)
        else:
            codes = {"flat": "Flat", "sq8": "SQ8", "fp16": "SQfp16"}[self.ivf_codes]
        refine = {"none": "", "flat": ",RFlat", "fp16": ",Refine(SQfp16)"}[self.refine]
        return f"IVF{nlist},{codes}{refine}"


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


def hit_rows(hits: Sequence[Sequence[tuple[int, float]]], k: int) -> np.ndarray:
    """[Q, k] row ids of `ItemIndex.search` answers (-1 where an answer holds fewer than k), the
    form `recall_at` compares."""
    rows = [[r for r, _ in h[:k]] for h in hits]
    return np.array([r + [-1] * (k - len(r)) for r in rows], dtype=np.int64).reshape(-1, k)


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
    _ivf: Any = None  # its IVF part (the index itself, or the base of a re-rank), for nprobe
    report: dict = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        keys: Sequence[str],
        vectors: np.ndarray,
        cfg: IndexConfig | None = None,
        sample_queries: np.ndarray | None = None,
        truth_queries: np.ndarray | None = None,
        held_out: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> ItemIndex:
        """Index `vectors` [N,d] (row r named keys[r]). `sample_queries` [Q,d] (e.g. encoded histories)
        tune and measure the approximate index; default: sampled catalog rows plus noise.
        `truth_queries` [Q,d]: the same histories encoded by the reference model (float32), when the
        served queries come from a faster, approximate encoder (int8): recall@10 is then measured
        against the exact answer to the reference queries, so it includes the encoder's error.
        `held_out` (queries, their reference queries or None): others, not tuned on, whose recall
        is reported as `held_out_recall@10` (`measure_held_out`)."""
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
            index._build_faiss(vectors, _queries(vectors, sample_queries, cfg), truth, held_out)
        index.report.update(
            kind=kind, n_items=len(keys), dim=index.dim, build_s=round(time.perf_counter() - t0, 3)
        )
        if kind == "exact":
            index.report["recall@10"] = 1.0
        return index

    def __len__(self) -> int:
        return len(self.keys)

    def _build_faiss(
        self,
        vectors: np.ndarray,
        queries: np.ndarray,
        truth: np.ndarray | None,
        held_out: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> None:
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
            spec = self.cfg.ivf_factory(n, d)
            index = faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
            self._ivf = faiss.extract_index_ivf(index)
            sample = vectors[np.sort(rng.choice(n, min(n, 40 * self._ivf.nlist), replace=False))]
            index.train(sample)
            self.report.update(nlist=int(self._ivf.nlist), codes=self.cfg.ivf_codes, factory=spec)
            if self.cfg.refine != "none":
                self.report["refine"] = self.cfg.refine
        else:
            index = faiss.IndexHNSWFlat(d, self.cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
        index.add(vectors)
        self._faiss = index
        truth_rows = self._reference_top10(vectors, queries, truth)
        if truth is not None:  # what exact search of the served queries reaches: no index can beat it
            own = exact_topk(queries, vectors, 10, self.cfg.chunk_rows)[1]
            self.report["engine_recall@10"] = round(recall_at(own, truth_rows), 4)
        self.tune(queries, truth_rows)
        if held_out is not None and len(held_out[0]):
            others, others_ref = held_out
            self.measure_held_out(others, self._reference_top10(vectors, others, others_ref))
        self._vectors = np.zeros((0, d), dtype=np.float32)  # FAISS keeps its own copy

    def _reference_top10(
        self, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray | None
    ) -> np.ndarray:
        """Exact top-10 rows of `truth` (the same histories from the float32 reference model), or of
        `queries` themselves when they are the reference: what recall is measured against."""
        ref = queries if truth is None else np.ascontiguousarray(truth[: len(queries)], np.float32)
        return exact_topk(ref, vectors, 10, self.cfg.chunk_rows)[1]

    @property
    def refined(self) -> bool:
        """Whether searches re-rank k x k_factor candidates exactly (IVF with ivf_refine)."""
        return self.kind == "ivf" and self.cfg.refine != "none"

    def tune(self, queries: np.ndarray, truth: np.ndarray, target_recall: float | None = None) -> None:
        """Smallest probe width (IVF nprobe / HNSW efSearch) whose recall@10 on `queries` [Q,d]
        against `truth` [Q,10] (exact top-10 rows) reaches the target (default cfg.target_recall);
        with a re-rank, then the smallest k_factor that keeps it at that width (nprobe is tuned at
        MAX_K_FACTOR: it decides which items can be found at all, and scanning lists is the cost
        that grows fastest; where every list scanned still misses, that cap is raised up to
        K_FACTOR_LIMIT). Each search is doubling until it passes, then bisection between the
        last failing and first passing width (cost grows with the width, so every step saved is
        latency saved). Called by `build`; callable again to re-tune for another target."""
        if self._faiss is None:
            raise UserError("an exact index has nothing to tune")
        target = self.cfg.target_recall if target_recall is None else target_recall
        recalls: dict[tuple[int, int], float] = {}

        def recall(width: int, k_factor: int) -> float:
            if (width, k_factor) not in recalls:
                self._set_knob(width)
                if self.refined:
                    self._faiss.k_factor = k_factor
                recalls[width, k_factor] = recall_at(self._faiss.search(queries, 10)[1], truth)
            return recalls[width, k_factor]

        knob = "nprobe" if self.kind == "ivf" else "efSearch"
        limit = self.report.get("nlist", 4096) if self.kind == "ivf" else 4096

        def width_at(cap: int) -> int:
            return _smallest_passing(lambda w: recall(w, cap), 4, limit, target)

        cap = self.cfg.refine_k_factor or MAX_K_FACTOR
        width = width_at(cap)
        tuned_k = self.refined and not self.cfg.refine_k_factor
        reachable = self.report.get("engine_recall@10", 1.0) >= target  # else no width or cap helps
        while tuned_k and reachable and recall(width, cap) < target and cap < K_FACTOR_LIMIT:
            cap = min(4 * cap, K_FACTOR_LIMIT)  # every list scanned still misses: re-rank more
            width = width_at(cap)
        k_factor = cap
        if tuned_k:
            k_factor = _smallest_passing(lambda f: recall(width, f), 1, cap, target)
        self._set_knob(width)
        reached = recall(width, k_factor)
        self.report.update({knob: width, "recall@10": round(reached, 4)})
        if self.refined:
            self._faiss.k_factor = k_factor
            self.report["k_factor"] = k_factor
        self.report.update(
            {"recall_queries": len(queries), "target_recall": target, "target_met": reached >= target}
        )
        self.report.pop("shortfall", None)
        self.report.pop("held_out_recall@10", None)
        self.report.pop("held_out_queries", None)
        if reached < target:
            self.report["shortfall"] = self.shortfall()

    def measure_held_out(self, queries: np.ndarray, truth: np.ndarray) -> float:
        """recall@10 of `queries` [Q,d] the tuner did not see against `truth` [Q,10] (exact top-10
        rows, as `tune` takes them), kept in the report as `held_out_recall@10`: the figure to
        expect on traffic, since the tuned one is read on the very queries whose first passing width
        was kept. `build` measures it when given held-out queries; a later `tune` drops it."""
        if self._faiss is None:
            raise UserError("an exact index has no recall to measure")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        recall = round(recall_at(self._faiss.search(queries, 10)[1], truth), 4)
        self.report.update({"held_out_recall@10": recall, "held_out_queries": len(queries)})
        return recall

    def shortfall(self) -> str:
        """Why the tuned index misses its target, in words: the query engine's own error (exact
        search of its queries already misses) or the index (its widest search misses)."""
        r, target = self.report.get("recall@10"), self.report.get("target_recall")
        engine = self.report.get("engine_recall@10")
        if engine is not None and engine < target:
            return (
                f"recall@10 {r} < target {target}: the query engine caps it (exact search of its "
                f"queries reaches {engine} against the float32 model's); serve with engine 'eager' "
                "or lower index.target_recall"
            )
        return (
            f"recall@10 {r} < target {target} at the widest search tried "
            f"({self.report.get('factory', self.kind)}): use finer codes (index.ivf_codes fp16) "
            "or lower index.target_recall"
        )

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

    def _rerank_params(self, k: int, want: int) -> Any:
        """Per-call re-rank width: k x k_factor candidates for the k results (what the tuner
        measured) plus one per excluded row, instead of want x k_factor: a 50-item history would
        otherwise multiply the re-rank (and the fast-scan heap) by 6 for the same recall."""
        if not self.refined or want <= k:
            return None
        import faiss

        params = faiss.IndexRefineSearchParameters()
        params.k_factor = (k * self._faiss.k_factor + want - k) / want
        return params

    def _set_knob(self, value: int) -> None:
        if self.kind == "ivf":
            self._ivf.nprobe = value
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
            scores, rows = self._faiss.search(queries, want, params=self._rerank_params(k, want))
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


def _smallest_passing(recall: Callable[[int], float], start: int, limit: int, target: float) -> int:
    """Smallest width in [1, limit] whose recall reaches `target` (recall assumed non-decreasing in
    the width): doubling from `start` until it passes, then bisection; `limit` when none passes."""
    low, high = 0, min(start, limit)  # recall(low) < target <= recall(high), once found
    while recall(high) < target and high < limit:
        low, high = high, min(limit, high * 2)
    if recall(high) >= target:
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if recall(mid) >= target else (mid, high)
    return high
