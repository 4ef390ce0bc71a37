"""Property-based fuzzing of the HTTP API from its own OpenAPI spec (Schemathesis): whatever the
generated input, the server never answers 5xx, and answers with documented status codes, content
types and schema-valid bodies (all default checks except 'schema-valid input must be accepted':
a well-formed history of unknown keys is a 422 by design)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from serve_fakes import FakeEncoder, fake_items

from scalerec.serve.api import create_app
from scalerec.serve.index import IndexConfig
from scalerec.serve.recommender import Recommender, ServeConfig

_cfg = ServeConfig(index=IndexConfig(kind="exact"), max_k=20, max_history=8, max_batch=4)
app = create_app(Recommender(FakeEncoder(n_items=50, dim=8), fake_items(50), _cfg))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx(case) -> None:
    response = case.call()
    assert response.status_code < 500, (response.status_code, response.text)
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
