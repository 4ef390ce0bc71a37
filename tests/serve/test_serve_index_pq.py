"""IVF with 4-bit fast-scan PQ codes and an exact re-rank: exact when nothing is left out, tuned to
the target with the smallest widths, and its settings checked before any index is built."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalerec.errors import UserError
from scalerec.serve.index import MAX_K_FACTOR, IndexConfig, ItemIndex, exact_topk, hit_rows, recall_at
from scalerec.serve.synthetic import ClusteredEncoder

pytest.importorskip("faiss")


def clustered(n: int, dim: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Keys, clustered unit vectors and 100 queries (means of 3 rows) drawn from them."""
    enc = ClusteredEncoder(n, dim, n_clusters=max(4, n // 100), seed=seed)
    rng = np.random.default_rng(seed + 100)
    queries = enc.vectors[rng.integers(0, n, (100, 3))].mean(axis=1).astype(np.float32)
    return [str(i) for i in range(n)], enc.vectors, queries


@pytest.mark.parametrize("refine", ["flat", "fp16"])
def test_full_probe_and_full_rerank_give_the_exact_top_k(refine: str) -> None:
    """Every list scanned and every item re-ranked: the answer is exact search's, scores included
    (fp16 re-rank: to fp16 precision), with seen items excluded as the server asks."""
    keys, vectors, queries = clustered(500, 16, seed=0)
    cfg = IndexConfig(
        kind="ivf",
        ivf_codes="pq4fs",
        ivf_refine=refine,
        ivf_lists=8,
        refine_k_factor=MAX_K_FACTOR,
        recall_queries=50,
    )
    index = ItemIndex.build(keys, vectors, cfg)  # 10 x 64 candidates >= 500 items: all re-ranked
    assert index.report["factory"].startswith("IVF8,PQ8x4fsr,") and index.report["refine"] == refine
    index.set_width(8)
    hits = index.search(queries, 10, exclude=[[0, 1, 2]] * len(queries))
    scores = queries @ vectors.T
    scores[:, [0, 1, 2]] = -np.inf
    truth = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    rows = np.array([[r for r, _ in h] for h in hits])
    got = np.array([[s for _, s in h] for h in hits])
    tol = 2e-3 if refine == "fp16" else 1e-5  # fp16 vectors may swap near-ties: same scores, not rows
    np.testing.assert_allclose(
        np.take_along_axis(scores, rows, 1), np.take_along_axis(scores, truth, 1), atol=tol
    )
    np.testing.assert_allclose(got, np.take_along_axis(scores, truth, 1), atol=tol)
    if refine == "flat":
        np.testing.assert_array_equal(rows, truth)


def test_tuner_reaches_the_target_with_the_smallest_nprobe_and_k_factor() -> None:
    """nprobe is the smallest reaching the target at MAX_K_FACTOR, then k_factor the smallest that
    keeps it at that nprobe: one less of either misses the target on the tuning queries."""
    keys, vectors, queries = clustered(20_000, 32, seed=1)
    cfg = IndexConfig(kind="ivf", ivf_codes="pq4fs", target_recall=0.95, recall_queries=100)
    index = ItemIndex.build(keys, vectors, cfg, sample_queries=queries)
    report = index.report
    assert report["codes"] == "pq4fs" and report["refine"] == "flat"  # 'auto' re-ranks pq4fs
    assert report["recall@10"] >= 0.95 and report["recall_queries"] == 100
    nprobe, k_factor = report["nprobe"], report["k_factor"]
    assert nprobe > 1 and k_factor > 1
    truth = exact_topk(queries, vectors, 10)[1]

    def recall(width: int, factor: int) -> float:
        index._set_knob(width)
        index._faiss.k_factor = factor
        return recall_at(index._faiss.search(queries, 10)[1], truth)

    assert recall(nprobe, k_factor) >= 0.95
    assert recall(nprobe - 1, MAX_K_FACTOR) < 0.95
    assert recall(nprobe, k_factor - 1) < 0.95


def test_codes_are_residuals_to_the_list_centroid() -> None:
    """4-bit codes of each vector's residual to its IVF centroid, not of the vector: at the same
    widths (every list, 8 x 10 candidates re-ranked) they find far more of the exact top 10 than
    whole-vector codes, whose 16 centroids per 2 dimensions are spent on the spread between lists."""
    import faiss

    rng = np.random.default_rng(5)
    centres = rng.normal(size=(200, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = (
        centres[rng.integers(0, 200, 20_000)] + 0.15 * rng.normal(size=(20_000, 32)) / np.sqrt(32)
    ).astype(np.float32)
    queries = vectors[rng.integers(0, 20_000, (100, 3))].mean(axis=1).astype(np.float32)
    truth = exact_topk(queries, vectors, 10)[1]
    cfg = IndexConfig(kind="ivf", ivf_codes="pq4fs", ivf_lists=141, refine_k_factor=8, recall_queries=100)
    index = ItemIndex.build([str(i) for i in range(20_000)], vectors, cfg, sample_queries=queries)
    assert faiss.extract_index_ivf(index._faiss).by_residual
    index.set_width(141)
    residual = recall_at(hit_rows(index.search(queries, 10), 10), truth)
    whole = faiss.index_factory(32, "IVF141,PQ16x4fs,RFlat", faiss.METRIC_INNER_PRODUCT)
    whole.train(vectors)
    whole.add(vectors)
    faiss.extract_index_ivf(whole).nprobe, whole.k_factor = 141, 8
    assert residual >= 0.9 and residual - recall_at(whole.search(queries, 10)[1], truth) >= 0.1


def test_the_re_rank_cap_is_raised_when_every_list_scanned_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a first cap of 2 (20 candidates for a top 10) the target is out of reach at any nprobe;
    the tuner raises the cap x4 until it is reached, then keeps the smallest k_factor there."""
    import scalerec.serve.index as index_mod

    monkeypatch.setattr(index_mod, "MAX_K_FACTOR", 2)
    keys, vectors, queries = clustered(20_000, 32, seed=7)
    cfg = IndexConfig(kind="ivf", ivf_codes="pq4fs", ivf_lists=141, target_recall=0.95, recall_queries=100)
    index = ItemIndex.build(keys, vectors, cfg, sample_queries=queries)
    report = index.report
    assert report["target_met"] and report["recall@10"] >= 0.95 and report["k_factor"] > 2
    truth = exact_topk(queries, vectors, 10)[1]

    def recall(width: int, factor: int) -> float:
        index._set_knob(width)
        index._faiss.k_factor = factor
        return recall_at(index._faiss.search(queries, 10)[1], truth)

    assert recall(141, 2) < 0.95  # the first cap could not have reached it
    assert recall(report["nprobe"], report["k_factor"] - 1) < 0.95
    fixed = ItemIndex.build(
        keys,
        vectors,
        IndexConfig(kind="ivf", ivf_codes="pq4fs", ivf_lists=141, refine_k_factor=2, recall_queries=100),
        sample_queries=queries,
    )  # a k_factor the user fixed is never raised: the miss is reported instead
    assert fixed.report["k_factor"] == 2 and fixed.report["target_met"] is False
    noisy = queries + np.random.default_rng(1).normal(scale=0.5, size=queries.shape).astype(np.float32)
    capped = ItemIndex.build(keys, vectors, cfg, sample_queries=noisy, truth_queries=queries)
    assert capped.report["engine_recall@10"] < 0.95  # the served queries cap it: the cap is not raised
    assert capped.report["k_factor"] <= 2 and "query engine caps it" in capped.report["shortfall"]


def test_retuning_for_a_higher_target_widens_and_still_holds_on_fresh_queries() -> None:
    keys, vectors, queries = clustered(20_000, 32, seed=2)
    cfg = IndexConfig(kind="ivf", ivf_codes="pq4fs", target_recall=0.9, recall_queries=100)
    index = ItemIndex.build(keys, vectors, cfg, sample_queries=queries)
    low = index.report["nprobe"]
    index.tune(queries, exact_topk(queries, vectors, 10)[1], target_recall=0.98)
    assert index.report["nprobe"] >= low and index.report["recall@10"] >= 0.98
    assert index.report["target_recall"] == 0.98
    fresh = clustered(20_000, 32, seed=2)[1][np.random.default_rng(9).integers(0, 20_000, (100, 3))].mean(
        axis=1
    )
    found = np.array([[r for r, _ in h] for h in index.search(fresh, 10)])
    assert recall_at(found, exact_topk(fresh, vectors, 10)[1]) >= 0.93
    index.add("cold", fresh[0] * 5)  # a cold item goes into the codes and the re-rank vectors
    assert index.search(fresh[:1], 1)[0][0][0] == 20_000


def test_a_fixed_k_factor_is_kept_and_refine_applies_to_other_codes() -> None:
    keys, vectors, queries = clustered(5_000, 16, seed=3)
    cfg = IndexConfig(kind="ivf", ivf_codes="sq8", ivf_refine="flat", refine_k_factor=3, recall_queries=50)
    index = ItemIndex.build(keys, vectors, cfg, sample_queries=queries)
    assert index.report["k_factor"] == 3 and index._faiss.k_factor == 3
    assert index.report["factory"].endswith(",SQ8,RFlat")
    # excluded rows widen the re-rank by one candidate each, not by k_factor each
    assert round(13 * index._rerank_params(10, 13).k_factor) == 10 * 3 + 3
    assert index._rerank_params(10, 10) is None  # nothing excluded: the tuned k x k_factor
    hits = index.search(queries[:5], 10, exclude=[[int(r) for r in range(50)]] * 5)
    assert all(len(h) == 10 and min(r for r, _ in h) >= 50 for h in hits)
    plain = ItemIndex.build(keys, vectors, IndexConfig(kind="ivf", ivf_codes="fp16", recall_queries=50))
    assert "k_factor" not in plain.report and "refine" not in plain.report  # unchanged default path


def test_factory_strings() -> None:
    assert (
        IndexConfig(ivf_codes="pq4fs", ivf_lists=4000).ivf_factory(10**6, 256) == "IVF4000,PQ128x4fsr,RFlat"
    )
    assert IndexConfig(ivf_codes="pq4fs", pq_m=64, ivf_refine="fp16").ivf_factory(10**6, 256) == (
        "IVF4000,PQ64x4fsr,Refine(SQfp16)"
    )
    assert IndexConfig(ivf_codes="fp16").ivf_factory(10**6, 256) == "IVF4000,SQfp16"  # 4 sqrt(n)
    assert IndexConfig(ivf_codes="pq4fs", ivf_refine="none").ivf_factory(4096, 8) == "IVF64,PQ4x4fsr"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ivf_codes": "pq8"}, "ivf_codes"),
        ({"ivf_refine": "exact"}, "ivf_refine"),
        ({"refine_k_factor": -1}, "refine_k_factor"),
        ({"ivf_codes": "fp16", "refine_k_factor": 4}, "needs a re-rank"),
        ({"ivf_codes": "pq4fs", "ivf_refine": "none", "refine_k_factor": 4}, "needs a re-rank"),
        ({"ivf_codes": "sq8", "pq_m": 8}, "pq_m applies"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        IndexConfig(**kwargs)


def test_pq_m_must_divide_the_width() -> None:
    keys, vectors, _ = clustered(2_000, 16, seed=4)
    with pytest.raises(UserError, match="pq_m=6 must divide the vector width 16"):
        ItemIndex.build(keys, vectors, IndexConfig(kind="ivf", ivf_codes="pq4fs", pq_m=6))


def test_serve_index_benchmark_runs_on_synthetic_vectors(capsys: pytest.CaptureFixture[str]) -> None:
    """The micro-benchmark end to end on a tiny catalog: every variant at every target, held-out
    recall measured, the ratio's base is the first variant (1.0)."""
    import sys

    from bench_scripts import load_script

    bench = load_script("benchmarks/serve_index.py")
    argv = [
        "serve_index.py",
        "--synthetic",
        "--items",
        "3000",
        "--dim",
        "16",
        "--lists",
        "0",
        "--tune-queries",
        "60",
        "--eval-queries",
        "60",
        "--rounds",
        "2",
        "--targets",
        "0.9,0.95",
    ]
    old = sys.argv
    sys.argv = argv
    try:
        bench.main()
    finally:
        sys.argv = old
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    results = [x for x in lines if "variant" in x]
    assert [(r["target"], r["variant"]) for r in results] == [
        (0.9, "fp16"),
        (0.9, "pq4fs"),
        (0.95, "fp16"),
        (0.95, "pq4fs"),
    ]
    assert all(r["tune_recall@10"] >= r["target"] for r in results)
    assert [r["p50_ratio_vs_fp16"] for r in results if r["variant"] == "fp16"] == [1.0, 1.0]
    assert all(0.0 <= r["eval_recall@10"] <= 1.0 and r["timed"] == 60 for r in results)


def test_scalerec_serve_settings_reach_the_index_config() -> None:
    """`scalerec serve --set index.ivf_codes=pq4fs ...` goes through the typed config loader."""
    from scalerec.config import load
    from scalerec.serve.recommender import ServeConfig

    cfg = load(
        ServeConfig, overrides=["index.ivf_codes=pq4fs", "index.ivf_refine=fp16", "index.refine_k_factor=8"]
    )
    assert (cfg.index.ivf_codes, cfg.index.refine, cfg.index.refine_k_factor) == ("pq4fs", "fp16", 8)
    with pytest.raises(UserError, match="ivf_codes"):
        load(ServeConfig, overrides=["index.ivf_codes=pq5"])


def test_hit_rows_pads_short_answers_for_recall_at() -> None:
    from scalerec.serve.index import hit_rows, recall_at

    rows = hit_rows([[(3, 0.9), (1, 0.5)], [(2, 0.1), (0, 0.0), (4, -1.0)]], 3)
    assert rows.tolist() == [[3, 1, -1], [2, 0, 4]]
    assert hit_rows([], 3).shape == (0, 3)
    assert recall_at(rows, np.array([[3, 1, 5], [2, 0, 4]])) == (2 / 3 + 1) / 2


def test_a_missed_target_is_flagged_and_its_cause_named() -> None:
    """A target the index cannot reach is reported as missed, with the cause: the served queries'
    own error (exact search of them already misses the reference answer) or the index codes."""
    keys, vectors, queries = clustered(5_000, 16, seed=6)
    met = ItemIndex.build(
        keys, vectors, IndexConfig(kind="ivf", ivf_codes="fp16", recall_queries=50), queries
    )
    assert met.report["target_met"] is True and "shortfall" not in met.report
    noisy = queries + np.random.default_rng(0).normal(scale=0.5, size=queries.shape).astype(np.float32)
    capped = ItemIndex.build(
        keys,
        vectors,
        IndexConfig(kind="ivf", ivf_codes="fp16", recall_queries=50),
        noisy,
        truth_queries=queries,
    )
    engine = capped.report["engine_recall@10"]
    assert engine < 0.95 and capped.report["recall@10"] <= engine + 0.05
    assert capped.report["target_met"] is False and "query engine caps it" in capped.report["shortfall"]
    coarse_cfg = IndexConfig(
        kind="ivf", ivf_codes="pq4fs", ivf_refine="none", target_recall=1.0, recall_queries=50
    )
    coarse = ItemIndex.build(keys, vectors, coarse_cfg, queries)
    assert "engine_recall@10" not in coarse.report  # no reference queries: nothing to compare
    assert coarse.report["target_met"] is False and "widest search" in coarse.report["shortfall"]
    coarse.tune(queries, exact_topk(queries, vectors, 10)[1], target_recall=0.5)  # a re-tune clears it
    assert coarse.report["target_met"] is True and "shortfall" not in coarse.report


def test_serve_warns_at_start_up_when_the_index_misses_its_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """`scalerec serve` prints the shortfall in words before it starts listening, and says nothing
    when the target is met."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import scalerec.serve.api as api
    import scalerec.serve.run_encoder as run_encoder
    import scalerec.serve.server as server
    from scalerec.cli import app

    class Rec(SimpleNamespace):
        def __len__(self) -> int:
            return 3

    report = {"kind": "ivf", "recall@10": 0.74, "build_s": 1.0, "shortfall": "WHY"}
    monkeypatch.setattr(api, "create_app", lambda rec: rec)
    started: list[object] = []
    monkeypatch.setattr(server, "serve", lambda app_, host, port: started.append(app_))
    for met, expect in ((False, "warning: WHY"), (True, None)):
        report["target_met"] = met
        rec = Rec(index=SimpleNamespace(report=report))
        monkeypatch.setattr(run_encoder, "load_recommender", lambda *a, _r=rec, **k: _r)
        result = CliRunner().invoke(app, ["serve", "RUN"])
        assert result.exit_code == 0, result.output
        assert ("warning" in result.output) == (expect is not None)
        if expect:
            assert expect in " ".join(result.output.split())
    assert len(started) == 2


def test_recall_on_held_out_queries_is_measured_and_dropped_by_a_re_tune() -> None:
    """`build` tunes on the sample queries and reads recall on the held-out ones too (the figure to
    expect on traffic); it equals a direct search of those queries against exact search, and a
    re-tune, which changes the widths, drops it."""
    keys, vectors, queries = clustered(20_000, 32, seed=8)
    others = clustered(20_000, 32, seed=8)[1][np.random.default_rng(3).integers(0, 20_000, (60, 3))].mean(
        axis=1
    )
    cfg = IndexConfig(kind="ivf", ivf_codes="pq4fs", target_recall=0.9, recall_queries=100)
    index = ItemIndex.build(keys, vectors, cfg, sample_queries=queries, held_out=(others, None))
    direct = recall_at(
        index._faiss.search(others.astype(np.float32), 10)[1], exact_topk(others, vectors, 10)[1]
    )
    assert index.report["held_out_recall@10"] == round(direct, 4) and index.report["held_out_queries"] == 60
    index.tune(queries, exact_topk(queries, vectors, 10)[1], target_recall=0.97)
    assert "held_out_recall@10" not in index.report
    assert (
        index.measure_held_out(others, exact_topk(others, vectors, 10)[1])
        == index.report["held_out_recall@10"]
    )


def test_the_recommender_holds_out_half_as_many_histories_as_it_tunes_on() -> None:
    """Histories 0..Q-1 tune the index, the next Q/2 are held out; random histories likewise."""
    from scalerec.serve.recommender import Item, Recommender, ServeConfig

    enc = ClusteredEncoder(3_000, 16, seed=9)
    items = [Item(str(i), f"t{i}", "", ()) for i in range(3_000)]
    seen: list[int] = []

    class Counting:
        def encode_catalog(self) -> np.ndarray:
            return enc.encode_catalog()

        def encode_histories(self, histories):
            seen.append(len(histories))
            return enc.encode_histories(histories)

    cfg = ServeConfig(index=IndexConfig(kind="ivf", ivf_codes="fp16", recall_queries=40))
    hist = np.random.default_rng(0).integers(1, 3_001, (100, 4)).tolist()
    rec = Recommender(Counting(), items, cfg, tune_histories=hist)
    assert seen == [40, 20] and rec.index.report["held_out_queries"] == 20
    seen.clear()
    rec = Recommender(Counting(), items, cfg)  # random 5-item histories
    assert seen == [40, 20] and "held_out_recall@10" in rec.index.report
    seen.clear()
    rec = Recommender(Counting(), items, cfg, tune_histories=hist[:40])  # none left to hold out
    assert seen == [40] and "held_out_recall@10" not in rec.index.report
