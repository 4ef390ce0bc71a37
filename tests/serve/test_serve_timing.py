"""Per-stage timing of the serving path (scalerec.serve.timing): the `Server-Timing` header the
benchmark reads its split from, the stages the service reports, and the client-side summary."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_fakes import FakeEncoder, fake_items

from bench_scripts import load_script
from scalerec.serve.api import create_app
from scalerec.serve.index import IndexConfig, ItemIndex
from scalerec.serve.recommender import Query, Recommender, ServeConfig
from scalerec.serve.timing import StageClock, parse_server_timing, server_timing

serve_load = load_script("benchmarks/serve_load.py")

SERVICE_STAGES = ["resolve", "encode", "search", "build", "batch"]


def test_server_timing_round_trips_and_skips_entries_without_dur() -> None:
    header = server_timing([("parse", 0.0514), ("encode", 3.25)])
    assert header == b"parse;dur=0.051, encode;dur=3.250"
    assert parse_server_timing(header.decode() + ', cache;desc="hit", x;dur=2') == {
        "parse": 0.051, "encode": 3.25, "x": 2.0}


def test_stage_clock_laps_and_adds_sub_stages() -> None:
    clock = StageClock()
    clock.lap("a")
    clock.lap("a")  # a stage closed twice accumulates
    clock.add({"items": 1.5, "transformer": 2.0})
    clock.add(None)
    assert list(clock.ms) == ["a", "items", "transformer"] and clock.ms["items"] == 1.5
    assert clock.ms["a"] >= 0.0 and clock.last >= clock.start


def test_recommendations_carry_the_call_stages(recommender: Recommender) -> None:
    (rec,) = recommender.recommend_batch([Query(["K1", "K2"], 3)])
    assert list(rec.timings) == SERVICE_STAGES and rec.timings["batch"] == 1.0
    start, end = rec.window
    assert end >= start > 0 and all(v >= 0 for v in rec.timings.values())


@pytest.mark.parametrize("on", [True, False])
def test_the_hot_path_sends_server_timing_only_when_asked(on: bool) -> None:
    cfg = ServeConfig(index=IndexConfig(kind="exact"), server_timing=on)
    client = TestClient(create_app(Recommender(FakeEncoder(), fake_items(300), cfg)))
    r = client.post("/recommend", json={"history": ["K1", "K2"], "k": 5})
    assert r.status_code == 200 and len(r.json()["items"]) == 5
    assert set(r.json()) == {"items", "unknown", "used", "error"}  # the body does not change
    if not on:
        assert "server-timing" not in r.headers
        return
    stages = parse_server_timing(r.headers["server-timing"])
    expected = ["read", "parse", "queue", *SERVICE_STAGES, "resume", "json", "app"]
    assert list(stages) == expected
    parts = sum(v for k, v in stages.items() if k not in ("app", "batch"))
    assert stages["app"] == pytest.approx(parts, abs=0.05)  # the stages tile the app's time
    bad = client.post("/recommend", json={"history": ["nope"], "k": 5})
    assert bad.status_code == 404 and "server-timing" not in bad.headers


def test_split_summary_reports_each_stage_and_the_time_outside_the_app() -> None:
    stages = [{"encode": 2.0, "app": 3.0}, {}, {"encode": 4.0, "app": 5.0}, {"encode": 3.0, "app": 4.0}]
    split = serve_load.split_summary(stages, [0.004, 0.5, 0.006, 0.0055])
    assert split["requests"] == 3  # the request without a header is left out, not counted as 0
    assert split["encode"] == {"p50": 3.0, "mean": 3.0}
    assert split["total"]["p50"] == 5.5 and split["outside_app"]["p50"] == pytest.approx(1.0)
    assert serve_load.split_summary([{}, {}], [0.1, 0.2]) == {}


def test_index_recall_is_measured_against_the_reference_queries() -> None:
    """An approximate query engine tunes the index against exact search of the float32 queries:
    truth from unrelated reference queries cannot be matched, truth from the same ones can."""
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    queries = rng.standard_normal((60, 16)).astype(np.float32)
    cfg = IndexConfig(kind="ivf", recall_queries=60, ivf_lists=32)
    keys = [f"k{i}" for i in range(3000)]
    same = ItemIndex.build(keys, vectors, cfg, queries, queries.copy())
    plain = ItemIndex.build(keys, vectors, cfg, queries)
    assert same.report["recall@10"] == plain.report["recall@10"] >= 0.95
    assert same.report["nprobe"] == plain.report["nprobe"]
    other = ItemIndex.build(keys, vectors, cfg, queries, rng.standard_normal((60, 16)).astype(np.float32))
    assert other.report["recall@10"] < 0.5


def test_set_width_overrides_the_tuned_probe_width_and_says_so() -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    index = ItemIndex.build([f"k{i}" for i in range(3000)], vectors, IndexConfig(kind="ivf", ivf_lists=32))
    tuned, recall = index.report["nprobe"], index.report["recall@10"]
    index.set_width(1)
    assert index._faiss.nprobe == 1 and index.report["nprobe"] == 1
    assert index.report["tuned_nprobe"] == tuned and index.report["tuned_recall@10"] == recall
    assert "recall@10" not in index.report
    exact = ItemIndex.build(["a"], vectors[:1], IndexConfig(kind="exact"))
    with pytest.raises(Exception, match="exact index"):
        exact.set_width(4)
