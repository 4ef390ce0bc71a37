"""A tiny hermetic world for the serve tests (fake encoder, 300 items, small limits)."""

from __future__ import annotations

import pytest
from serve_fakes import FakeEncoder, fake_items

from scalerec.serve.index import IndexConfig
from scalerec.serve.recommender import Recommender, ServeConfig


@pytest.fixture()
def encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture()
def recommender(encoder: FakeEncoder) -> Recommender:
    cfg = ServeConfig(
        index=IndexConfig(kind="exact"), max_k=20, max_history=8, max_batch=4, max_body_bytes=4096
    )
    return Recommender(encoder, fake_items(len(encoder.vectors)), cfg)
