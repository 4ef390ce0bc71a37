"""`evaluate_run` and `scalerec evaluate` on a hand-built run dir (tiny id model, tiny dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from scalerec.data.read.sequences import load_sequences
from scalerec.data.read.splits import leave_one_out
from scalerec.eval.encode import user_vectors
from scalerec.eval.evaluate import evaluate_run
from scalerec.eval.metrics import metrics_from_ranks
from scalerec.eval.ranking import brute_force_rank
from scalerec.model import ModelConfig, SequentialRecommender
from scalerec.rundir import model_meta, save_weights


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 25
    rows = []
    for u in range(1, n_users + 1):
        for t, item in enumerate(rng.integers(1, n_items + 1, size=rng.integers(3, 9))):
            rows.append((u, int(item), t))
    ds = tmp_path / "data"
    ds.mkdir()
    users, items, ts = map(np.array, zip(*rows, strict=True))
    table = pa.table({"user_id": users.astype(np.int32), "item_id": items.astype(np.int32),
                      "timestamp": ts.astype(np.int64), "rating": pa.nulls(len(rows), pa.float32())})
    pq.write_table(table, ds / "interactions.parquet")
    torch.manual_seed(0)
    cfg = ModelConfig(item_encoder="id", n_items=n_items, d_model=8, n_layers=1, n_heads=1, d_ffn=16,
                      max_len=6, dropout=0.0)
    model = SequentialRecommender(cfg)
    run = tmp_path / "run"
    run.mkdir()
    save_weights(run, model, model_meta(cfg, None, ds, step=0))
    (run / "final.json").write_text("{}")
    return run


def test_evaluate_run_matches_direct_computation(run_dir: Path) -> None:
    report = evaluate_run(run_dir, bootstrap=50, device="cpu", sampled_negatives=10)
    saved = json.loads((run_dir / "eval.json").read_text())
    assert saved["model"]["ndcg@10"]["mean"] == pytest.approx(report["model"]["ndcg@10"]["mean"])
    assert report["n_users"] == 40 and report["n_items"] == 25 and report["split"] == "test"
    assert all(k.startswith("sampled10_") for k in report["sampled"] if k != "note")
    m = report["model"]["hr@5"]
    assert m["low"] <= m["mean"] <= m["high"]

    from scalerec.rundir import load_run

    model = load_run(run_dir).model
    hist, targets = leave_one_out(load_sequences(Path(report["dataset"]))).test
    users = user_vectors(model, hist, 6, 16, torch.device("cpu"), None)
    ranks = brute_force_rank(users, model.all_item_vectors().detach(), targets.astype(np.int64))
    want = metrics_from_ranks(ranks)
    for name in ("ndcg@10", "hr@5", "mrr"):
        assert report["model"][name]["mean"] == pytest.approx(want[name], abs=1e-9)


def test_evaluate_valid_masked_writes_own_file(run_dir: Path) -> None:
    report = evaluate_run(run_dir, split="valid", mask_seen=True, bootstrap=0, device="cpu",
                          sampled_negatives=0)
    assert Path(report["path"]).name == "eval_valid_masked.json"
    assert "sampled" not in report and "low" not in report["model"]["mrr"]


def test_cli_table_json_and_errors(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scalerec.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(run_dir), "--bootstrap", "20", "--sampled", "0", "--device", "cpu"])
    assert exc.value.code in (0, None)
    out = capsys.readouterr().out
    assert "most-popular" in out and "ndcg@10" in out and "eval.json" in out
    with pytest.raises(SystemExit):
        main(["evaluate", str(run_dir), "--baseline", str(run_dir), "--bootstrap", "0", "--sampled", "0"])
    assert "baseline run run" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["evaluate", str(run_dir), "--json", "--bootstrap", "0", "--sampled", "0", "--device", "cpu"])
    assert json.loads(capsys.readouterr().out)["split"] == "test"
    for bad in (["evaluate", str(run_dir / "nope")], ["evaluate", str(run_dir), "--split", "train"]):
        with pytest.raises(SystemExit) as exc:
            main(bad)
        assert exc.value.code == 2
