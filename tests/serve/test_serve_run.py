"""Serving a real run dir end to end: dataset + token table + saved model → service, CLI and HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

WORDS = [["red", "apple", "cherry"], ["blue", "ocean", "wave"], ["green", "leaf", "forest"]]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A complete (untrained, random-init) text-encoder run over a 30-item catalog."""
    from scalerec.model import ModelConfig, SequentialRecommender
    from scalerec.rundir import model_meta, save_weights
    from scalerec.text.item_tokens import build_token_table, load_item_tokens

    root = tmp_path_factory.mktemp("serve_run")
    data, tokens, run = root / "data", root / "tokens", root / "run"
    data.mkdir()
    n = 30
    topic = np.arange(n) % 3
    pq.write_table(
        pa.table(
            {
                "item_id": pa.array(np.arange(1, n + 1), pa.int32()),
                "item_key": [f"A{i:03d}" for i in range(1, n + 1)],
                "title": [f"{' '.join(WORDS[t])} thing {i}" for i, t in enumerate(topic, 1)],
                "brand": [WORDS[t][0] for t in topic],
                "categories": [[WORDS[t][1]] for t in topic],
            }
        ),
        data / "items.parquet",
    )
    (data / "card.json").write_text(json.dumps({"format_version": 1, "n_items": n}))
    build_token_table(data, tokens, vocab_size=60, max_lens={"title": 8, "brand": 2, "categories": 2})
    vocab = load_item_tokens(tokens).vocab_size
    cfg = ModelConfig(
        vocab_size=vocab,
        token_dim=16,
        d_model=16,
        n_layers=1,
        n_heads=2,
        d_ffn=32,
        max_len=6,
        dropout=0.0,
        field_max_len={"title": 8, "brand": 2, "categories": 2},
    )
    torch.manual_seed(0)
    model = SequentialRecommender(cfg)
    run.mkdir()
    save_weights(run, model, model_meta(cfg, tokens, data, step=0))
    (run / "final.json").write_text("{}")
    return run


def test_run_encoder_matches_the_model(run_dir) -> None:
    from scalerec.rundir import load_run
    from scalerec.serve.run_encoder import RunEncoder

    enc = RunEncoder(run_dir)
    model = load_run(run_dir).model
    with torch.no_grad():
        items = model.all_item_vectors()[1:].numpy()
        hidden = model(torch.tensor([[3, 5, 7]]))[0, -1].numpy()
    np.testing.assert_allclose(enc.encode_catalog(), items, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(enc.encode_history([3, 5, 7]), hidden, rtol=1e-4, atol=1e-5)
    long = list(range(1, 21))  # longer than max_len=6: the most recent 6 are used
    np.testing.assert_allclose(enc.encode_history(long), enc.encode_history(long[-6:]), rtol=1e-5, atol=1e-6)
    # the batched path (one padded forward for a micro-batch) equals one call per history
    hists = [[3, 5, 7], [2], long, [9, 9, 1, 4]]
    one_by_one = np.stack([enc.encode_history(h) for h in hists])
    np.testing.assert_allclose(enc.encode_histories(hists), one_by_one, rtol=1e-4, atol=1e-5)


def test_cold_start_item_with_a_catalog_items_text_scores_like_it(run_dir) -> None:
    from scalerec.serve.run_encoder import load_recommender

    rec = load_recommender(run_dir)
    twin = rec.get_item("A004")
    rec.add_item("NEW", twin.title, twin.brand, twin.categories)
    vecs = rec.encoder.encode_catalog()  # the table now includes the new row
    np.testing.assert_allclose(vecs[-1], vecs[3], rtol=1e-5, atol=1e-6)
    out = rec.recommend(["A001", "A002"], k=31, exclude_seen=True)
    keys = [s.key for s in out.items]
    assert "NEW" in keys and len(keys) == 29  # 30 + 1 new - 2 seen
    assert rec.recommend(["NEW"], k=3).used == 1  # a cold-start item may be in a history


def test_cli_recommend_table_and_json(run_dir) -> None:
    from scalerec.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["recommend", str(run_dir), "--history", "A001,A002,zzz", "--k", "4", "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    assert len(body["items"]) == 4 and body["unknown"] == ["zzz"]
    assert not {"A001", "A002"} & {it["key"] for it in body["items"]}
    res = runner.invoke(app, ["recommend", str(run_dir), "--history", "A001", "--k", "3", "--include-seen"])
    assert res.exit_code == 0 and "score" in res.output and "thing" in res.output
    bad = runner.invoke(app, ["recommend", str(run_dir), "--history", "nope"])
    assert bad.exit_code != 0


def test_http_over_a_real_run(run_dir) -> None:
    from scalerec.serve.api import create_app
    from scalerec.serve.run_encoder import load_recommender

    client = TestClient(create_app(load_recommender(run_dir)))
    r = client.post("/items", json={"key": "N1", "title": "blue ocean wave thing", "brand": "blue"})
    assert r.status_code == 201, r.text
    items = client.post("/recommend", json={"history": ["A002"], "k": 31}).json()["items"]
    assert "N1" in [it["key"] for it in items]


def test_bfloat16_queries_stay_close_to_float32(run_dir) -> None:
    """`dtype="bfloat16"` runs only the transformer in bf16 (the speed knob of CPU serving); catalog
    vectors are unchanged and query vectors stay within bf16 rounding of the float32 ones."""
    from scalerec.serve.run_encoder import RunEncoder

    fp32, bf16 = RunEncoder(run_dir), RunEncoder(run_dir, dtype="bfloat16")
    np.testing.assert_array_equal(fp32.encode_catalog(), bf16.encode_catalog())
    hists = [[3, 5, 7], [2], list(range(1, 21)), [9, 9, 1, 4]]
    a, b = fp32.encode_histories(hists), bf16.encode_histories(hists)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.99 and not np.array_equal(a, b)


def test_length_groups_cover_every_row_once_and_split_only_when_it_pays() -> None:
    from scalerec.serve.run_encoder import length_groups

    lengths = np.array([3, 50, 2, 4, 49, 3, 1, 2])
    groups = length_groups(lengths, overhead=48)
    assert sorted(np.concatenate(groups).tolist()) == list(range(8))
    assert [sorted(lengths[g].tolist()) for g in groups] == [[1, 2, 2, 3, 3, 4], [49, 50]]
    assert len(length_groups(np.array([5, 6, 7, 9]), overhead=48)) == 1  # padding costs less than a call
    assert len(length_groups(np.array([1] * 64 + [50]), overhead=48)) == 2


def test_grouped_batches_equal_one_history_at_a_time(run_dir) -> None:
    from scalerec.serve.run_encoder import RunEncoder

    enc = RunEncoder(run_dir)
    hists = [[3], [1, 2, 3, 4, 5, 6], [7, 8], [9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [4]]
    one_by_one = np.stack([enc.encode_history(h) for h in hists])
    np.testing.assert_allclose(enc.encode_histories(hists), one_by_one, rtol=1e-4, atol=1e-5)


HISTS = [[3], [1, 2, 3, 4, 5, 6], [7, 8], list(range(1, 21)), [9, 9, 1, 4]]


def test_jit_engine_equals_eager_and_int8_stays_close(run_dir) -> None:
    """The traced engines encode like the eager model at every batch size and history length
    (neither is specialised to the trace's example); int8 weights move vectors by ~1%, no more."""
    from scalerec.serve.run_encoder import RunEncoder

    eager = RunEncoder(run_dir)
    jit, int8 = RunEncoder(run_dir, engine="jit"), RunEncoder(run_dir, engine="int8")
    ref = eager.encode_histories(HISTS)
    np.testing.assert_allclose(jit.encode_histories(HISTS), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(jit.encode_history([7, 8]), ref[2], rtol=1e-4, atol=1e-5)
    q = int8.encode_histories(HISTS)
    cos = (q * ref).sum(1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() > 0.99 and not np.allclose(q, ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(int8.encode_catalog(), eager.encode_catalog())  # items stay float32
    assert set(int8.last_split) == {"items", "transformer"} and int8.last_split["transformer"] > 0


def test_reference_queries_are_the_float32_models(run_dir) -> None:
    from scalerec.errors import UserError
    from scalerec.serve.run_encoder import RunEncoder

    eager, int8 = RunEncoder(run_dir), RunEncoder(run_dir, engine="int8")
    assert eager.reference_histories(HISTS) is None  # already the reference
    ref = eager.encode_histories(HISTS)
    np.testing.assert_allclose(int8.reference_histories(HISTS), ref, rtol=1e-5, atol=1e-6)
    bf16 = RunEncoder(run_dir, dtype="bfloat16")  # bf16 runs a converted copy: the model stays float32
    np.testing.assert_allclose(bf16.reference_histories(HISTS), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="float32"):
        RunEncoder(run_dir, engine="int8", dtype="bfloat16")
    with pytest.raises(UserError, match="engine"):
        RunEncoder(run_dir, engine="onnx")


def test_load_recommender_plumbs_the_engine_and_the_split(run_dir) -> None:
    from scalerec.serve.run_encoder import load_recommender

    rec = load_recommender(run_dir, engine="int8")
    assert rec.encoder.engine == "int8"
    out = rec.recommend(["A001", "A002"], k=3)
    assert {"items", "transformer", "encode", "search"} <= set(out.timings)
    assert out.timings["items"] + out.timings["transformer"] <= out.timings["encode"] + 1e-6


def test_cached_item_vectors_encode_histories_like_the_item_encoder(run_dir) -> None:
    """After `encode_catalog`, history items are read from the catalog's vectors (cached by
    default for a text run this small): the same queries as the item encoder gives, for every
    engine; a cold-start item added since falls back to the encoder; `cache_items=False` keeps none."""
    from scalerec.serve.run_encoder import RunEncoder

    for engine in ("eager", "int8"):
        plain = RunEncoder(run_dir, engine=engine, cache_items=False)
        cached = RunEncoder(run_dir, engine=engine)
        catalog = cached.encode_catalog()
        assert plain.encode_catalog() is not None and plain.item_cache is None
        assert cached.item_cache is not None and cached.item_cache.shape == (31, 16)
        np.testing.assert_array_equal(catalog, cached.item_cache[1:].numpy())
        np.testing.assert_allclose(
            cached.encode_histories(HISTS), plain.encode_histories(HISTS), rtol=1e-5, atol=1e-6
        )
    calls: list[int] = []
    real = cached.model.encode_items
    cached.model.encode_items = lambda ids, *a: calls.append(int(ids.max())) or real(ids, *a)  # type: ignore[method-assign]
    cached.encode_histories([[1, 2, 3]])
    assert calls == []  # read from the cache: the item encoder did not run
    vec = cached.encode_new_item("new thing", "brand", ["cat"])  # item 31: not in the cache
    out = cached.encode_histories([[1, 31]])
    assert calls and calls[-1] == 31 and vec.shape == (16,) and np.isfinite(out).all()
