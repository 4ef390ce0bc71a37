"""Cold start end to end with every default width: synth → prepare → text train → train → serve →
POST /items → the new item is recommended. `text train` writes 40-token titles while the model's
own default is 32; serving used to build a 32-wide row for a new item and crash (issue 23)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner


def _cli(*argv: str) -> None:
    from scalerec.cli import app

    result = CliRunner().invoke(app, list(argv))
    assert result.exit_code == 0, (argv, result.output, result.exception)


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> tuple[Path, Path]:
    """A run trained for a few steps on synthetic data, every stage at its defaults."""
    root = tmp_path_factory.mktemp("cold_e2e")
    raw, ds, tok, runs = root / "raw", root / "ds", root / "tok", root / "runs"
    _cli("data", "synth", "--format", "amazon2018", "--interactions", "4000", "--seed", "1",
         "--out", str(raw))
    _cli("data", "prepare", "--source", "amazon2018", "--ratings", str(raw / "ratings.csv"),
         "--meta", str(raw / "meta.json.gz"), "--out", str(ds))
    _cli("text", "train", "--data", str(ds), "--out", str(tok))
    _cli("train", "--data", str(ds), "--tokens", str(tok), "--size", "tiny", "--out", str(runs),
         "--name", "r", "--device", "cpu", "--tracking-uri", "off", "--set", "train.max_steps=3")
    return runs / "r", tok


def test_default_widths_differ_so_the_test_can_fail(chain) -> None:
    from scalerec.model.config import ModelConfig
    from scalerec.text.item_tokens import load_item_tokens

    _, tok = chain
    assert load_item_tokens(tok).fields["title"].shape[1] != ModelConfig().field_max_len["title"]


def test_new_item_is_recommendable_with_default_widths(chain) -> None:
    from scalerec.serve.api import create_app
    from scalerec.serve.recommender import ServeConfig
    from scalerec.serve.run_encoder import load_recommender

    run, _ = chain
    rec = load_recommender(run, ServeConfig(max_k=1000))
    twin = rec.items[4]
    client = TestClient(create_app(rec))
    new = {"key": "NEW-1", "title": twin.title, "brand": twin.brand, "categories": twin.categories}
    r = client.post("/items", json=new)
    assert r.status_code == 201, r.text
    assert client.get("/items/NEW-1").json()["cold_start"] is True
    body = client.post("/recommend", json={"history": [rec.items[0].key], "k": len(rec)}).json()
    scores = {it["key"]: it["score"] for it in body["items"]}
    assert "NEW-1" in scores  # recommendable in the very next request
    assert scores["NEW-1"] == pytest.approx(scores[twin.key], rel=1e-4, abs=1e-5)  # same text, same vector
    # the new item can also be part of a history now
    r = client.post("/recommend", json={"history": ["NEW-1"], "k": 5})
    assert r.status_code == 200 and r.json()["used"] == 1, r.text
