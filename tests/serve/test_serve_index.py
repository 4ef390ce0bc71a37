"""The index against brute force: exact search must be exact, FAISS must reach its recall."""

from __future__ import annotations

import numpy as np
import pytest

from scalerec.errors import UserError
from scalerec.serve.index import IndexConfig, ItemIndex, exact_topk, recall_at
from scalerec.serve.synthetic import ClusteredEncoder


def brute(queries: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def test_exact_topk_matches_brute_force_across_chunks() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((1000, 8)).astype(np.float32)
    queries = rng.standard_normal((7, 8)).astype(np.float32)
    scores, rows = exact_topk(queries, vectors, 15, chunk_rows=97)
    np.testing.assert_array_equal(rows, brute(queries, vectors, 15))
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, rows, 1), rtol=1e-5)
    assert exact_topk(queries, vectors[:5], 15)[1].shape == (7, 5)  # k > N returns all rows


def test_exact_index_excludes_and_adds() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    keys = [f"k{i}" for i in range(200)]
    index = ItemIndex.build(keys, vectors, IndexConfig(kind="exact", chunk_rows=64))
    q = vectors[3:4] * 3
    top = index.search(q, 5, exclude=[[3]])[0]
    truth = [r for r in brute(q, vectors, 6)[0] if r != 3][:5]
    assert [r for r, _ in top] == truth
    row = index.add("new", vectors[3] * 10)
    assert row == 200 and index.rows_by_key["new"] == 200
    assert index.search(q, 1)[0][0][0] == 200
    with pytest.raises(UserError, match="already"):
        index.add("new", vectors[0])


def test_duplicate_keys_and_bad_shapes_are_user_errors() -> None:
    with pytest.raises(UserError, match="unique"):
        ItemIndex.build(["a", "a"], np.zeros((2, 4)))
    with pytest.raises(UserError, match="vectors"):
        ItemIndex.build(["a", "b"], np.zeros((3, 4)))


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_faiss_recall_reaches_target_and_holds_on_fresh_queries(kind: str) -> None:
    enc = ClusteredEncoder(20_000, 32, n_clusters=200, seed=0)
    keys = [str(i) for i in range(20_000)]
    index = ItemIndex.build(keys, enc.vectors, IndexConfig(kind=kind, target_recall=0.95, recall_queries=100))
    assert index.kind == kind and index.report["recall@10"] >= 0.95
    rng = np.random.default_rng(7)
    fresh = enc.vectors[rng.integers(0, 20_000, (100, 3))].mean(axis=1)
    approx = np.array([[r for r, _ in hits] for hits in index.search(fresh, 10)])
    assert recall_at(approx, brute(fresh, enc.vectors, 10)) >= 0.9
    index.add("cold", fresh[0] * 5)  # appended rows are searchable at once
    assert index.search(fresh[:1], 1)[0][0][0] == 20_000


@pytest.mark.parametrize("codes", ["flat", "sq8"])
def test_ivf_probe_width_is_the_smallest_that_reaches_the_target(codes: str) -> None:
    """The tuner bisects: one probe fewer than the chosen width misses the target recall."""
    enc = ClusteredEncoder(20_000, 32, n_clusters=200, seed=1)
    keys = [str(i) for i in range(20_000)]
    cfg = IndexConfig(kind="ivf", ivf_codes=codes, target_recall=0.95, recall_queries=100, seed=3)
    index = ItemIndex.build(keys, enc.vectors, cfg)
    width = index.report["nprobe"]
    assert index.report["codes"] == codes and index.report["recall@10"] >= 0.95 and width > 1
    rng = np.random.default_rng(cfg.seed + 1)  # the build's own recall queries (see index._queries)
    queries = enc.vectors[rng.integers(0, 20_000, size=(100, 3))].mean(axis=1).astype(np.float32)
    truth = brute(queries, enc.vectors, 10)
    index._set_knob(width - 1)
    assert recall_at(index._faiss.search(queries, 10)[1], truth) < 0.95


def test_auto_picks_exact_below_threshold_and_faiss_above() -> None:
    vectors = np.random.default_rng(2).standard_normal((300, 8)).astype(np.float32)
    keys = [str(i) for i in range(300)]
    assert ItemIndex.build(keys, vectors, IndexConfig(exact_threshold=300)).kind == "exact"
    assert ItemIndex.build(keys, vectors, IndexConfig(exact_threshold=299)).kind == "ivf"


def test_clustered_encoder_batches_like_single_histories() -> None:
    enc = ClusteredEncoder(500, 16, n_clusters=10, seed=2)
    hists = [[1], [5, 9, 200], list(range(1, 80)), [500, 500]]
    batched = enc.encode_histories(hists)
    single = np.stack([enc.encode_history(h) for h in hists])
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)


def test_batched_exclusion_matches_one_query_at_a_time() -> None:
    """The whole-batch filter (kept hits moved to the front of each row) gives each query exactly
    its own brute-force answer, with exclusion lists of different lengths and short answers."""
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((9, 4)).astype(np.float32)
    index = ItemIndex.build([f"k{i}" for i in range(9)], vectors, IndexConfig(kind="exact"))
    queries = rng.standard_normal((4, 4)).astype(np.float32)
    exclude = [[0, 5, 7], [], [8], list(range(8))]
    got = index.search(queries, 7, exclude)
    for q, skip, hits in zip(queries, exclude, got, strict=True):
        truth = [int(r) for r in brute(q[None], vectors, 9)[0] if r not in skip][:7]
        assert [r for r, _ in hits] == truth
        assert [s for _, s in hits] == pytest.approx([float(q @ vectors[r]) for r in truth], rel=1e-5)
    assert len(got[3]) == 1  # 8 of 9 excluded: one hit, not k


def test_the_index_is_tuned_on_the_histories_given() -> None:
    """Real users' histories tune the approximate index when given (random ones are easier)."""
    pytest.importorskip("faiss")
    from serve_fakes import FakeEncoder, fake_items

    from scalerec.serve.recommender import Recommender, ServeConfig

    cfg = ServeConfig(index=IndexConfig(kind="ivf", recall_queries=50))
    enc = FakeEncoder(n_items=300)
    default = Recommender(enc, fake_items(300), cfg)
    tuned = Recommender(enc, fake_items(300), cfg, tune_histories=[[1, 2, 3], [4]] * 15)
    assert default.index.report["recall_queries"] == 50
    assert tuned.index.report["recall_queries"] == 30
