"""Every endpoint and error path of the HTTP API, through FastAPI's TestClient (no sockets)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_fakes import FakeEncoder

from scalerec.serve.api import create_app
from scalerec.serve.recommender import Recommender


@pytest.fixture()
def client(recommender: Recommender) -> TestClient:
    return TestClient(create_app(recommender))


def brute_top(encoder: FakeEncoder, ids: list[int], k: int, exclude: set[int]) -> list[str]:
    scores = encoder.vectors @ encoder.encode_history(ids)
    order = [int(i) + 1 for i in np.argsort(-scores, kind="stable") if int(i) + 1 not in exclude]
    return [f"K{i}" for i in order[:k]]


def test_recommend_matches_brute_force_excludes_seen_and_reports_unknown(client, encoder) -> None:
    r = client.post("/recommend", json={"history": ["K5", "nope", "K9"], "k": 6})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [it["key"] for it in body["items"]] == brute_top(encoder, [5, 9], 6, {5, 9})
    assert body["unknown"] == ["nope"] and body["used"] == 2
    assert body["items"][0]["title"] == f"title {body['items'][0]['key'][1:]}"
    scores = [it["score"] for it in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_include_seen_returns_the_history_item(client) -> None:
    body = client.post("/recommend", json={"history": ["K5"], "k": 3, "exclude_seen": False}).json()
    assert body["items"][0]["key"] == "K5"  # a unit vector is its own best match
    assert "K5" not in [
        it["key"] for it in client.post("/recommend", json={"history": ["K5"]}).json()["items"]
    ]


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"history": []}, "history"),
        ({"history": ["K1"] * 9}, "history"),
        ({"history": ["K1"], "k": 0}, "k"),
        ({"history": ["K1"], "k": 21}, "k"),
        ({"history": ["K1"], "k": "5"}, "k"),
        ({"history": ["K1"], "k": 2.5}, "k"),
        ({"history": "K1"}, "history"),
        ({"history": [1, 2]}, "history"),
        ({"history": ["K1"], "exclude_seen": "yes"}, "exclude_seen"),
        ({"history": ["K1"], "extra": 1}, "extra"),
        ({"history": [""]}, "history"),
        ({}, "history"),
    ],
)
def test_bad_recommend_input_is_422_with_a_clear_message(client, payload, needle) -> None:
    r = client.post("/recommend", json=payload)
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]


def test_history_of_unknown_keys_is_404_and_integral_float_k_is_accepted(client) -> None:
    """Both are schema-valid requests: the OpenAPI document promises an answer from its own list
    (Schemathesis' positive-data check), not a 422 (issue 22 item 7)."""
    r = client.post("/recommend", json={"history": ["zzz", "yyy"]})
    assert r.status_code == 404 and "none of the history keys" in r.json()["detail"]
    r = client.post("/recommend", json={"history": ["K1"], "k": 4.0})
    assert r.status_code == 200 and len(r.json()["items"]) == 4
    spec = client.get("/openapi.json").json()
    assert "404" in spec["paths"]["/recommend"]["post"]["responses"]
    assert "409" in spec["paths"]["/items"]["post"]["responses"]


def test_invalid_json_and_huge_bodies(client) -> None:
    r = client.post("/recommend", content=b'{"history": [', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    r = client.post("/recommend", json={"history": ["K1"] * 2000})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    chunked = (b"x" * 1000 for _ in range(10))  # no content-length: counted while streaming
    assert client.post("/recommend", content=chunked).status_code == 413


def test_batch_answers_each_entry_and_isolates_bad_ones(client, encoder) -> None:
    reqs = [{"history": ["K2"], "k": 2}, {"history": ["missing"]}, {"history": ["K3", "K4"], "k": 20}]
    r = client.post("/recommend/batch", json={"requests": reqs})
    assert r.status_code == 200, r.text
    first, bad, third = r.json()["results"]
    assert [it["key"] for it in first["items"]] == brute_top(encoder, [2], 2, {2})
    assert bad["items"] == [] and "none of the history keys" in bad["error"]
    assert [it["key"] for it in third["items"]] == brute_top(encoder, [3, 4], 20, {3, 4})
    assert client.post("/recommend/batch", json={"requests": []}).status_code == 422
    many = {"requests": [{"history": ["K1"]}] * 5}
    assert client.post("/recommend/batch", json=many).status_code == 422
    bad_k = {"requests": [{"history": ["K1"], "k": 0}]}
    assert client.post("/recommend/batch", json=bad_k).status_code == 422


def test_cold_start_item_is_recommendable_in_the_next_request(client, encoder) -> None:
    encoder.next_vectors["shiny new thing"] = encoder.vectors[6] * 10  # aligned with K7, large norm
    r = client.post("/items", json={"key": "NEW1", "title": "shiny new thing", "categories": ["a", "b"]})
    assert r.status_code == 201, r.text
    assert r.json() == {
        "key": "NEW1",
        "title": "shiny new thing",
        "brand": "",
        "categories": ["a", "b"],
        "cold_start": True,
    }
    top = client.post("/recommend", json={"history": ["K7"], "k": 1}).json()["items"]
    assert top[0]["key"] == "NEW1" and top[0]["title"] == "shiny new thing"
    # the new item may itself appear in a history
    after_new = client.post("/recommend", json={"history": ["NEW1"], "k": 1}).json()
    assert after_new["used"] == 1 and after_new["items"][0]["key"] == "K7"
    assert client.get("/items/NEW1").json()["cold_start"] is True
    dup = client.post("/items", json={"key": "NEW1", "title": "again"})
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]


@pytest.mark.parametrize(
    "payload",
    [
        {"key": "X"},
        {"key": "", "title": "t"},
        {"key": "X", "title": ""},
        {"key": "X", "title": "t", "categories": "c"},
        {"key": "X", "title": 5},
        {"key": "X", "title": "\ud800"},
    ],
)
def test_bad_new_items_are_4xx(client, payload) -> None:
    body = json.dumps(payload).encode()  # ASCII escapes, so a lone surrogate reaches the server
    r = client.post("/items", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_get_item_healthz_and_docs(client) -> None:
    item = client.get("/items/K3").json()
    assert item == {
        "key": "K3",
        "title": "title 3",
        "brand": "brand",
        "categories": ["cat"],
        "cold_start": False,
    }
    missing = client.get("/items/nope")
    assert missing.status_code == 404 and "unknown item key" in missing.json()["detail"]
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["items"] == 300
    assert health["index"]["kind"] == "exact" and health["index"]["recall@10"] == 1.0
    spec = client.get("/openapi.json").json()
    assert {"/recommend", "/recommend/batch", "/items", "/items/{key}", "/healthz"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_unknown_keys_with_odd_unicode_never_crash(client) -> None:
    body = json.dumps({"history": ["K1", "\ud800", "é"]}).encode()
    r = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]  # a lone surrogate is not a valid key
    r = client.post("/recommend", json={"history": ["K1", "é\u2028x"]})
    assert r.status_code == 200 and r.json()["unknown"] == ["é\u2028x"]


def test_hot_path_and_fastapi_route_answer_alike(recommender: Recommender) -> None:
    """Valid bodies take the `FastRecommend` hot path in front of FastAPI; the FastAPI app alone
    (`app.api`) serves the same route. Answers must be byte-identical, good or bad."""
    app = create_app(recommender)
    hot, route = TestClient(app), TestClient(app.api)
    bodies = [
        {"history": ["K5", "nope", "K9"], "k": 4},
        {"history": ["K7"], "k": 2, "exclude_seen": False},
        {"history": ["nope"], "k": 4},  # no known key: 404 from the service
        {"history": ["K1"], "k": 3.0},  # an integral float is an integer in JSON Schema
        {"history": [], "k": 4},  # schema violation: FastAPI's 422
        {"history": ["K1"], "k": "4"},  # strict types
    ]
    for body in bodies:
        a, b = hot.post("/recommend", json=body), route.post("/recommend", json=body)
        assert (a.status_code, a.content) == (b.status_code, b.content), body
    assert hot.post("/recommend", json=bodies[0]).status_code == 200
