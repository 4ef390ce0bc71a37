"""Property-based fuzzing of the HTTP API from its own OpenAPI spec (Schemathesis) with every check
on: whatever the generated input, the server never answers 5xx, answers with documented status
codes, content types and schema-valid bodies, and accepts every request its schema calls valid
(`positive_data_acceptance`: a history of unknown keys is a documented 404, `k: 34.0` an integer).
A second app has an item cap of 2, so `POST /items` past it (409) is fuzzed too."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from serve_fakes import FakeEncoder, fake_items

from scalerec.serve.api import create_app
from scalerec.serve.index import IndexConfig
from scalerec.serve.recommender import Recommender, ServeConfig


def _schema(**limits: int):
    cfg = ServeConfig(index=IndexConfig(kind="exact"), max_k=20, max_history=8, max_batch=4, **limits)
    app = create_app(Recommender(FakeEncoder(n_items=50, dim=8), fake_items(50), cfg))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = _schema()
capped_schema = _schema(max_new_items=2)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_passes_every_schemathesis_check(case) -> None:
    case.call_and_validate()


@capped_schema.include(path="/items", method="POST").parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_item_cap_answers_as_documented(case) -> None:
    case.call_and_validate()
