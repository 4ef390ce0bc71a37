"""Property-based fuzzing of the HTTP API from its own OpenAPI spec (Schemathesis): whatever the
generated input, the server answers with a documented, schema-valid response and never a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from serve_fakes import FakeEncoder, fake_items

from scalerec.serve.api import create_app
from scalerec.serve.index import IndexConfig
from scalerec.serve.recommender import Recommender, ServeConfig

_cfg = ServeConfig(index=IndexConfig(kind="exact"), max_k=20, max_history=8, max_batch=4, max_body_bytes=4096)
app = create_app(Recommender(FakeEncoder(n_items=50, dim=8), fake_items(50), _cfg))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx(case) -> None:
    response = case.call()
    assert response.status_code < 500, (response.status_code, response.text)
    case.validate_response(response, checks=[not_a_server_error])
