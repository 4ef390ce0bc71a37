"""Micro-batching of concurrent requests onto one worker thread, for throughput under load.

An index search costs about the same for 1 query as for 10 (memory-bound scans, one FAISS call),
and FAISS releases the GIL while it searches. So single-request handlers do not search on the event
loop: they enqueue their query and await a future; one drain task hands everything queued so far
to a single worker thread as one `Recommender.recommend_batch` call, while the event loop keeps
parsing the next requests. Every service call that reads or mutates the catalog (searches,
cold-start additions, item look-ups) runs on that same thread, so they never interleave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from scalerec.errors import UserError
from scalerec.serve.index import adopt_search_threads
from scalerec.serve.recommender import Query, Recommendation, Recommender

T = TypeVar("T")


class Batcher:
    """Serializes service calls on one thread and merges concurrent single queries into batches."""

    def __init__(self, rec: Recommender, max_batch: int = 64) -> None:
        self.rec = rec
        self.max_batch = max_batch
        self.pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="scalerec-search", initializer=adopt_search_threads
        )
        self.pending: list[tuple[Query, asyncio.Future]] = []
        self.draining = False
        self.batches = 0
        self.queries = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the service thread (after anything queued before it)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def recommend(self, query: Query) -> Recommendation | UserError:
        """One query, answered as part of whatever batch is being collected."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((query, future))
        if not self.draining:
            self.draining = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                try:
                    results: list[Any] = await self.run(self.rec.recommend_batch, [q for q, _ in batch])
                except Exception as exc:  # surfaced to each waiting request, never lost
                    results = [exc] * len(batch)
                self.batches += 1
                self.queries += len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self.draining = False

    def stats(self) -> dict[str, float]:
        return {"batches": self.batches, "mean_batch": round(self.queries / max(self.batches, 1), 2)}
