"""Server settings: the search thread really uses the requested thread count, the Uvicorn options
are valid, and the JSON fallback handles the dataclasses the hot path now encodes directly."""

from __future__ import annotations

import asyncio
import json

import pytest

from scalerec.serve import index as index_module
from scalerec.serve.api import _encode
from scalerec.serve.batching import Batcher
from scalerec.serve.recommender import Scored
from scalerec.serve.server import uvicorn_options


def test_service_thread_adopts_the_search_thread_count(recommender, monkeypatch) -> None:
    """OpenMP thread counts are per thread: the count set at start-up must reach the thread that
    runs FAISS searches (before, it searched on every core whatever was asked)."""
    faiss = pytest.importorskip("faiss")
    monkeypatch.setattr(index_module, "_search_threads", 1)

    async def main() -> int:
        return await Batcher(recommender).run(faiss.omp_get_max_threads)

    assert asyncio.run(main()) == 1


def test_uvicorn_options_load() -> None:
    uvicorn = pytest.importorskip("uvicorn")
    config = uvicorn.Config(lambda scope, receive, send: None, **uvicorn_options())
    config.load()
    assert not config.proxy_headers and not config.server_header and not config.date_header


def test_encode_writes_dataclasses_on_both_paths() -> None:
    items = [Scored("K1", "title", 0.5)]
    assert json.loads(_encode({"items": items})) == {"items": [{"key": "K1", "title": "title", "score": 0.5}]}
    odd = json.loads(_encode({"items": [Scored("K1", "bad \ud800", 0.5)]}))  # orjson refuses: json path
    assert odd == {"items": [{"key": "K1", "title": "bad \ud800", "score": 0.5}]}


def test_hot_path_applies_the_body_limit_to_streamed_json(recommender) -> None:
    """`FastRecommend` now sits in front of the body limit: a JSON body without content-length that
    grows past the limit is a 413 from the hot path too, never a parse attempt or a 500."""
    from fastapi.testclient import TestClient

    from scalerec.serve.api import create_app

    client = TestClient(create_app(recommender))
    chunks = (b" " * 1000 for _ in range(10))
    r = client.post("/recommend", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
