"""Issue 20 item 6: unique fine-tuning dirs, no foreign dir replaced, pretrained runs listed and
loadable by name, nested target fractions, and the report's learning-curve figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scalerec.config import load
from scalerec.errors import UserError
from scalerec.transfer.finetune import FinetuneConfig, finetune


def _cfg(world: dict[str, Path], strategy: str, *sets: str) -> FinetuneConfig:
    base = [f"pretrained={world['run']}", f"data={world['target']}", f"strategy={strategy}", "epochs=1",
            "stage_epochs=1", "batch_size=16", "n_negatives=16", "n_boot=20", "forgetting=false",
            "progress=false", "tracking_uri=off"]
    return load(FinetuneConfig, overrides=base + list(sets))


def test_default_out_is_unique_per_run(world: dict[str, Path], tmp_path: Path) -> None:
    a = finetune(_cfg(world, "zero-shot", f"pretrained_root={tmp_path}"))
    b = finetune(_cfg(world, "zero-shot", f"pretrained_root={tmp_path}"))
    assert a["out"] != b["out"]
    for s in (a, b):
        out = Path(s["out"])
        assert out.parent == tmp_path / "finetune" and (out / "transfer.json").is_file()
        assert "zero-shot" in out.name and world["run"].name in out.name


def test_out_that_is_not_a_finetune_output_is_refused(world: dict[str, Path], tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a fine-tuning output"):
        finetune(_cfg(world, "zero-shot", f"out={mine}"))
    assert (mine / "notes.txt").read_text() == "keep me"
    with pytest.raises(UserError, match="overlaps the input"):
        finetune(_cfg(world, "zero-shot", f"out={world['target'] / 'ft'}"))
    out = tmp_path / "ft"
    finetune(_cfg(world, "zero-shot", f"out={out}"))
    finetune(_cfg(world, "zero-shot", f"out={out}"))  # an earlier fine-tuning output may be replaced
    assert json.loads((out / "transfer.json").read_text())["strategy"] == "zero-shot"


def _pretrained_root(world: dict[str, Path], root: Path) -> Path:
    run = root / "sweep" / "runs" / "my-pretrained"
    shutil.copytree(world["run"], run)
    final = {"format_version": 1, "model_size": "tiny", "params": {"non_embedding": 1234},
             "dataset": str(world["source"]), "targets_seen": 999, "valid": {"ndcg@10": 0.25},
             "test": {"ndcg@10": 0.2}}
    (run / "final.json").write_text(json.dumps(final))
    (root / "not-a-run").mkdir()
    return run


def test_pretrained_listing_and_from_name(world: dict[str, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scalerec.cli import app
    from scalerec.transfer.pretrained import list_pretrained, resolve

    run = _pretrained_root(world, tmp_path)
    entries = list_pretrained(tmp_path)
    assert [e.name for e in entries] == ["sweep/runs/my-pretrained"]
    e = entries[0]
    assert (e.size, e.params, e.encoder, e.targets_seen, e.test_ndcg10) == ("tiny", 1234, "text", 999, 0.2)
    assert e.data["n_users"] == 80  # from the source dataset's card
    assert resolve("my-pretrained", tmp_path) == run
    with pytest.raises(UserError, match="scalerec pretrained"):
        resolve("nope", tmp_path)
    res = CliRunner().invoke(app, ["pretrained", "--root", str(tmp_path)])
    assert res.exit_code == 0 and "my-pretrained" in res.output and "1,234" in res.output
    summary = finetune(_cfg(world, "zero-shot", "pretrained=my-pretrained", f"pretrained_root={tmp_path}"))
    assert summary["pretrained"] == str(run) and summary["pretrained_params"] == 1234


def test_target_fractions_are_nested(world: dict[str, Path]) -> None:
    from scalerec.transfer.domain import load_domain, with_fraction

    def users(fraction: float) -> set[tuple[int, ...]]:
        train = with_fraction(load_domain(world["target"], None), fraction).split.train
        return {tuple(train.row(i)) for i in range(train.n_users) if len(train.row(i))}

    small, half, full = users(0.25), users(0.5), users(1.0)
    assert small < half < full and len(small) < len(half)
    dom = with_fraction(load_domain(world["target"], None), 0.25)
    assert dom.popularity.sum() == len(dom.split.train.items)  # recounted on what remains


def test_report_writes_learning_curve_figures(world: dict[str, Path], tmp_path: Path) -> None:
    from scalerec.transfer.report import transfer_report

    root = tmp_path / "study"
    for frac in (0.5, 1.0):
        for strategy in ("scratch", "full"):
            finetune(_cfg(world, strategy, f"out={root / f'{strategy}-{frac}'}", f"target_fraction={frac}"))
    md = transfer_report(root)
    png = root / "transfer_vs_fraction.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000
    assert "![transfer_vs_fraction](transfer_vs_fraction.png)" in md.read_text()
    rows = json.loads((root / "transfer_report.json").read_text())["rows"]
    assert sorted({r["target_fraction"] for r in rows}) == [0.5, 1.0]
    assert np.all([r["overall"]["ndcg@10"] is not None for r in rows])


def test_finetune_is_tracked_in_the_training_store(world: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from scalerec.train.mlflow_tracker import RUN_FILE, default_tracking_uri

    cfg = _cfg(world, "full", f"pretrained_root={tmp_path}", "tracking_uri=none")
    summary = finetune(cfg)
    out = Path(summary["out"])
    client = MlflowClient(tracking_uri=default_tracking_uri(tmp_path), registry_uri="file:///dev/null")
    run = client.get_run(json.loads((out / RUN_FILE).read_text())["run_id"])
    tags = run.data.tags
    assert run.info.status == "FINISHED" and (tmp_path / "mlruns").is_dir()
    assert (tags["kind"], tags["strategy"], tags["dataset"]) == ("finetune", "full", "target")
    assert tags["git_commit"] and tags["pretrained"] == str(world["run"])
    assert {"test/ndcg_at_10", "valid/ndcg_at_10", "train/loss"} <= set(run.data.metrics)
