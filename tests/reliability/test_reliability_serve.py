"""Serving under careless and hostile use (issue 22 items 2 and 7): a capped `POST /items`, a
keep-alive connection that survives a server error, a diverged run refused at load, and
`recommend --json` that stays valid JSON whatever the scores."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from scalerec.errors import UserError
from scalerec.serve.api import create_app
from scalerec.serve.index import IndexConfig
from scalerec.serve.recommender import Item, Recommender, ServeConfig


class Encoder:
    """Random unit vectors; a history is its mean; titles starting with "boom" raise (a bug)."""

    def __init__(self, n: int = 40, dim: int = 8, nan: bool = False) -> None:
        v = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
        self.vectors, self.nan = v / np.linalg.norm(v, axis=1, keepdims=True), nan
        self.added: list[np.ndarray] = []

    def encode_catalog(self) -> np.ndarray:
        return self.vectors

    def encode_history(self, ids: Sequence[int]) -> np.ndarray:
        if self.nan:
            return np.full(self.vectors.shape[1], np.nan, np.float32)
        n = len(self.vectors)
        rows = [self.vectors[i - 1] if i <= n else self.added[i - n - 1] for i in ids]
        return np.mean(rows, axis=0).astype(np.float32)

    def encode_new_item(self, title: str, brand: str, categories: Sequence[str]) -> np.ndarray:
        if title.startswith("boom"):
            raise RuntimeError("encoder bug")
        self.added.append(self.vectors[0].copy())
        return self.added[-1]


def _service(**limits: int) -> Recommender:
    items = [Item(f"K{i}", f"title {i}") for i in range(1, 41)]
    return Recommender(Encoder(), items, ServeConfig(index=IndexConfig(kind="exact"), **limits))


def test_post_items_past_the_cap_is_409_and_adds_nothing() -> None:
    rec = _service(max_new_items=2)
    client = TestClient(create_app(rec))
    for i in range(2):
        assert client.post("/items", json={"key": f"N{i}", "title": "t"}).status_code == 201
    r = client.post("/items", json={"key": "N2", "title": "t"})
    assert r.status_code == 409 and "max_new_items" in r.json()["detail"]
    assert len(rec) == 42 and client.get("/items/N2").status_code == 404
    assert client.post("/recommend", json={"history": ["K1"]}).status_code == 200


@pytest.fixture()
def server() -> Iterator[int]:
    """The app under real Uvicorn on a free loopback port (keep-alive is a socket-level property)."""
    uvicorn = pytest.importorskip("uvicorn")
    from scalerec.serve.server import uvicorn_options

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(create_app(_service()), **uvicorn_options()))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield sock.getsockname()[1]
    srv.should_exit = True
    thread.join(10)


def _post(conn: http.client.HTTPConnection, path: str, body: dict) -> http.client.HTTPResponse:
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response


def test_keep_alive_connection_survives_a_server_error(server: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    r = _post(conn, "/items", {"key": "X", "title": "boom"})
    assert r.status == 500 and (r.getheader("connection") or "").lower() != "close"
    first_socket = conn.sock
    assert first_socket is not None  # http.client drops its socket when the server says close
    r = _post(conn, "/recommend", {"history": ["K1"], "k": 3})
    assert r.status == 200 and conn.sock is first_socket  # same connection, no reset
    conn.close()


def _run_dir(root: Path, nan: bool) -> Path:
    """A tiny id-encoder run; with `nan`, one weight is NaN (what a diverged run saves)."""
    from scalerec.model import ModelConfig, SequentialRecommender
    from scalerec.train.checkpoint import model_meta, save_weights

    data, run = root / "data", root / "run"
    data.mkdir()
    n = 12
    pq.write_table(
        pa.table(
            {
                "item_id": pa.array(np.arange(1, n + 1), pa.int32()),
                "item_key": [f"A{i}" for i in range(1, n + 1)],
                "title": [f"thing {i}" for i in range(1, n + 1)],
                "brand": [""] * n,
                "categories": [[] for _ in range(n)],
            }
        ),
        data / "items.parquet",
    )
    (data / "card.json").write_text(json.dumps({"format_version": 1, "n_items": n}))
    cfg = ModelConfig(item_encoder="id", n_items=n, d_model=8, n_layers=1, n_heads=2, d_ffn=16, max_len=4)
    torch.manual_seed(0)
    model = SequentialRecommender(cfg)
    if nan:
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] = float("nan")
    run.mkdir()
    save_weights(run, model, model_meta(cfg, None, data, step=0))
    (run / "final.json").write_text(json.dumps({"format_version": 1}))  # a finished run
    return run


def test_a_run_with_non_finite_weights_is_refused(tmp_path: Path, capsys) -> None:
    from scalerec.cli import main
    from scalerec.serve.run_encoder import load_recommender

    run = _run_dir(tmp_path, nan=True)
    with pytest.raises(UserError, match="NaN/Inf") as err:
        load_recommender(run)
    assert "\n" not in str(err.value)
    with pytest.raises(SystemExit) as exit_info:
        main(["recommend", str(run), "--history", "A1"])
    assert exit_info.value.code == 2 and "NaN/Inf" in capsys.readouterr().err


def test_a_finite_run_loads_and_answers(tmp_path: Path) -> None:
    from scalerec.serve.run_encoder import load_recommender

    answer = load_recommender(_run_dir(tmp_path, nan=False)).recommend(["A1"], k=3)
    assert len(answer.items) == 3 and all(np.isfinite(s.score) for s in answer.items)


def test_recommend_json_never_prints_nan(tmp_path: Path, monkeypatch) -> None:
    from scalerec.cli import app
    from scalerec.serve import run_encoder

    items = [Item(f"K{i}", f"title {i}") for i in range(1, 41)]
    rec = Recommender(Encoder(nan=True), items, ServeConfig(index=IndexConfig(kind="exact")))
    monkeypatch.setattr(run_encoder, "load_recommender", lambda *a, **k: rec)
    result = CliRunner().invoke(app, ["recommend", str(tmp_path), "--history", "K1", "--k", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert "NaN" not in result.output and "Infinity" not in result.output

    def strict(token: str) -> None:
        raise AssertionError(f"non-JSON constant {token}")

    body = json.loads(result.output, parse_constant=strict)
    assert len(body["items"]) == 3 and all(it["score"] is None for it in body["items"])
