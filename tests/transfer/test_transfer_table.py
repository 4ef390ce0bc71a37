"""The transfer table end to end at a tiny size: synthetic pretraining corpus with the target's
vocabulary → `scalerec.train.train` → every strategy → report + JSON lines (benchmarks/transfer.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_scripts import load_script


def _bench():
    return load_script("benchmarks/transfer.py", "transfer_bench", register=True)


def test_table_at_tiny_size(world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bench = _bench()
    args = bench.parse_args(["--cpu-small", "--max-len", "12", "--vocab-size", "300", "--negatives", "16",
                             "--batch-size", "32", "--eval-users", "50", "--pretrain-set", "model.d_model=16",
                             "--pretrain-set", "model.token_dim=16", "--pretrain-set", "model.d_ffn=32",
                             "--ft-set", "n_boot=50"])
    corpus = bench.synthetic_corpus(world["target"], tmp_path / "synth", 4000, seed=0)
    assert bench.vocab_overlap(corpus / "items.parquet", world["target"] / "items.parquet") > 0.5
    run = bench.pretrain(corpus, tmp_path / "tokens", tmp_path, args)
    assert (run / "final.json").is_file()
    report = bench.finetune_all(run, world["target"], tmp_path, args)
    verdict = bench.emit(report.parent, "synthetic", "tiny", {})
    md = report.read_text()
    for strategy in bench.STRATEGIES:
        assert f"| {strategy} |" in md
    assert "| most-popular |" in md and "## Findings" in md
    assert "scratch" in md and "zero-shot" in md
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    rows = {x["strategy"]: x for x in lines if "strategy" in x}
    assert set(bench.STRATEGIES) <= set(rows)
    assert rows["scratch"]["ratio_vs_scratch"] == pytest.approx(1.0)
    assert rows["id-scratch"]["cold_ndcg@10"] is None
    assert "best_vs_scratch" in verdict["comparisons"]
    assert "zero_shot_vs_most_popular" in verdict["comparisons"]


def test_merge_datasets_keeps_ids_disjoint(world: dict[str, Path], tmp_path: Path) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    bench = _bench()
    merged = bench.merge_datasets([world["source"], world["target"]], tmp_path / "merged")
    inter = pq.read_table(merged / "interactions.parquet")
    items = pq.read_table(merged / "items.parquet")
    card = json.loads((merged / "card.json").read_text())
    assert card["n_items"] == 48 + 32 == items.num_rows
    assert np.array_equal(items["item_id"].to_numpy(), np.arange(1, 81))
    assert card["n_users"] == 80 + 48 == inter["user_id"].to_numpy().max()
    assert inter["item_id"].to_numpy()[inter["user_id"].to_numpy() > 80].min() > 48


@pytest.mark.slow
def test_real_table_cpu_small(shared_data: Path, tmp_path: Path) -> None:
    bench = _bench()
    args = bench.parse_args(["--cpu-small", "--setting", "real", "--target", "beauty", "--out", str(tmp_path),
                             "--shared", str(shared_data)])
    verdict = bench.run_setting("real", "beauty", args)
    assert verdict["vocab_overlap"] > 0.3
    assert Path(verdict["report"]).is_file()
