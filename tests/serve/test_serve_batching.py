"""Micro-batching must be invisible: every concurrent query gets exactly its own answer."""

from __future__ import annotations

import asyncio

import pytest

from scalerec.errors import UserError
from scalerec.serve.batching import Batcher
from scalerec.serve.recommender import Query


def test_concurrent_queries_are_merged_and_each_gets_its_own_answer(recommender) -> None:
    queries = [Query([f"K{i}", f"K{i + 1}"], k=1 + i % 5, exclude_seen=i % 2 == 0) for i in range(1, 30)]
    queries.append(Query(["missing"]))

    async def main():
        batcher = Batcher(recommender, max_batch=8)
        results = await asyncio.gather(*[batcher.recommend(q) for q in queries])
        return batcher, results

    batcher, results = asyncio.run(main())
    for q, got in zip(queries[:-1], results[:-1], strict=True):
        want = recommender.recommend(q.history, q.k, q.exclude_seen)
        assert sorted(s.key for s in got.items) == sorted(s.key for s in want.items)  # ties may swap
        assert [s.score for s in got.items] == pytest.approx([s.score for s in want.items], rel=1e-5)
    assert isinstance(results[-1], UserError)
    assert batcher.stats()["batches"] < len(queries)  # merged, at most max_batch at a time
    assert batcher.stats()["mean_batch"] > 1


def test_additions_are_ordered_with_searches(recommender, encoder) -> None:
    encoder.next_vectors["twin"] = encoder.vectors[1] * 10

    async def main():
        batcher = Batcher(recommender)
        await batcher.run(recommender.add_item, "NEW", "twin")
        return await batcher.recommend(Query(["K2"], k=1))

    assert asyncio.run(main()).items[0].key == "NEW"
