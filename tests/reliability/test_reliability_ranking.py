"""One number per run: final.json and `scalerec evaluate` agree; a diverged (NaN) model scores 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rundir_world import train_tiny, write_world

from scalerec.eval.evaluate import evaluate_run


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ranking_world")
    write_world(root)
    return root


def test_final_json_test_metrics_equal_evaluate(root: Path) -> None:
    run = train_tiny(root, "same")
    final = json.loads((run / "final.json").read_text())
    report = evaluate_run(run, bootstrap=0, sampled_negatives=0, device="cpu", write=False)
    valid = evaluate_run(run, split="valid", bootstrap=0, sampled_negatives=0, device="cpu", write=False)
    for name, value in report["model"].items():
        assert value["mean"] == final["test"][name], name
    assert final["test"]["ndcg@10"] > 0  # a trained model: the comparison is not 0 == 0
    best = json.loads((run / "meta.json").read_text())["step"]
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    at_best = next(x for x in logged if x["step"] == best and "valid/ndcg@10" in x)
    assert valid["model"]["ndcg@10"]["mean"] == at_best["valid/ndcg@10"]


def test_bf16_ranking_gives_the_numbers_of_fp32(root: Path) -> None:
    from scalerec.data.read.sequences import load_sequences
    from scalerec.data.read.splits import leave_one_out
    from scalerec.eval.heldout import rank_heldout
    from scalerec.eval.ranking import full_rank
    from scalerec.rundir import load_run

    run = train_tiny(root, "prec")
    loaded = load_run(run)
    hist, tgt = leave_one_out(load_sequences(root / "data")).test
    held = rank_heldout(loaded.model, hist, tgt, 8, 64, "cpu", None)
    bf16 = full_rank(held.users, held.items, tgt, dtype=torch.bfloat16, chunk_items=7)
    assert torch.equal(held.ranks, bf16)


def test_nan_model_gets_zero_everywhere(root: Path) -> None:
    from safetensors.torch import load_file

    from scalerec.rundir import read_meta, save_weights

    run = train_tiny(root, "nan")
    meta = read_meta(run)
    weights = load_file(str(run / "model.safetensors"))
    model = _model_from(meta, weights)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    keep = {k: v for k, v in meta.items() if k not in ("format_version", "model_sha256", "model_bytes")}
    save_weights(run, model, keep)
    report = evaluate_run(run, bootstrap=0, sampled_negatives=20, device="cpu", write=False)
    assert report["model"]["ndcg@10"]["mean"] == 0.0
    assert report["model"]["hr@1"]["mean"] == 0.0
    assert report["model"]["mrr"]["mean"] < 0.05
    sampled = {k: v for k, v in report["sampled"].items() if k != "note"}
    assert sampled and all(v == 0.0 for k, v in sampled.items() if "ndcg" in k or "hr@" in k)


def _model_from(meta, weights):
    from scalerec.config import from_dict
    from scalerec.model import ModelConfig, SequentialRecommender

    model = SequentialRecommender(from_dict(ModelConfig, meta["model_config"]))
    model.load_state_dict(weights)
    return model
