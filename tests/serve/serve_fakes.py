"""Test doubles for the serve tests: a fake encoder whose answers are easy to predict."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scalerec.serve.recommender import Item


class FakeEncoder:
    """Random unit item vectors; a history is the mean of its items; a new item's vector is whatever
    `next_vectors[title]` says (else the vector of catalog item 1)."""

    def __init__(self, n_items: int = 300, dim: int = 16, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        v = rng.standard_normal((n_items, dim)).astype(np.float32)
        self.vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
        self.added: list[np.ndarray] = []
        self.next_vectors: dict[str, np.ndarray] = {}

    def encode_catalog(self) -> np.ndarray:
        return self.vectors

    def vector(self, item_id: int) -> np.ndarray:
        n = len(self.vectors)
        return self.vectors[item_id - 1] if item_id <= n else self.added[item_id - n - 1]

    def encode_history(self, ids: Sequence[int]) -> np.ndarray:
        return np.mean([self.vector(i) for i in ids], axis=0).astype(np.float32)

    def encode_new_item(self, title: str, brand: str, categories: Sequence[str]) -> np.ndarray:
        v = self.next_vectors.get(title, self.vectors[0])
        self.added.append(np.asarray(v, dtype=np.float32))
        return self.added[-1]


def fake_items(n: int) -> list[Item]:
    return [Item(f"K{i}", f"title {i}", "brand", ["cat"]) for i in range(1, n + 1)]
