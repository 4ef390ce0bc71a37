"""A model-free `Encoder` with clustered item vectors, for the serving benchmark and demos.

Real item embeddings from a text encoder are clustered (topics, brands) and far from isotropic
noise, and an ANN index behaves very differently on the two; so synthetic catalogs are drawn as
unit vectors around `n_clusters` random centres. Histories are encoded as the normalized mean of
their last items, and new items from a hash of their words, so cold start works without a model.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from scalerec.serve.recommender import Item


class ClusteredEncoder:
    """Encoder protocol over `n_items` clustered unit vectors of dimension `dim` (seeded)."""

    def __init__(
        self,
        n_items: int,
        dim: int = 256,
        n_clusters: int = 2000,
        spread: float = 1.3,
        seed: int = 0,
        chunk: int = 100_000,
    ) -> None:
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((n_clusters, dim), dtype=np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        self.vectors = np.empty((n_items, dim), dtype=np.float32)
        for start in range(0, n_items, chunk):
            n = min(chunk, n_items - start)
            block = centres[rng.integers(0, n_clusters, n)]
            block += rng.standard_normal((n, dim), dtype=np.float32) * (spread / np.sqrt(dim))
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            self.vectors[start : start + n] = block
        self.dim = dim
        self.added: list[np.ndarray] = []

    def encode_catalog(self) -> np.ndarray:
        return self.vectors

    def _vector(self, item_id: int) -> np.ndarray:
        n = len(self.vectors)
        return self.vectors[item_id - 1] if item_id <= n else self.added[item_id - n - 1]

    def encode_history(self, ids: Sequence[int]) -> np.ndarray:
        q = np.mean([self._vector(i) for i in ids[-50:]], axis=0)
        return (q / max(float(np.linalg.norm(q)), 1e-12)).astype(np.float32)

    def encode_histories(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """`encode_history` for many histories at once (vectorized: the serving hot path)."""
        if self.added:  # rare (cold-start ids in histories): the per-history path handles them
            return np.stack([self.encode_history(h) for h in histories])
        width = max(min(len(h), 50) for h in histories)
        ids = np.zeros((len(histories), width), dtype=np.int64)
        for row, h in enumerate(histories):
            tail = h[-50:]
            ids[row, : len(tail)] = tail
        mask = (ids > 0)[:, :, None]
        q = (self.vectors[np.maximum(ids - 1, 0)] * mask).sum(axis=1) / mask.sum(axis=1)
        return (q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def encode_new_item(self, title: str, brand: str, categories: Sequence[str]) -> np.ndarray:
        words = f"{title} {brand} {' '.join(categories)}".lower().split() or ["[empty]"]
        v: Any = sum(
            np.random.default_rng(zlib.crc32(w.encode("utf-8", "surrogatepass"))).standard_normal(self.dim)
            for w in words
        )
        v = (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
        self.added.append(v)
        return v


def synthetic_items(n_items: int) -> list[Item]:
    """Catalog metadata matching `ClusteredEncoder` rows: keys `I0000001`…, titles `item N`."""
    return [Item(f"I{i:07d}", f"item {i}") for i in range(1, n_items + 1)]
