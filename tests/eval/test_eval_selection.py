"""The accuracy benchmark selects configurations on validation only (benchmarks/selection.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import selection  # noqa: E402


def _run(tmp: Path, name: str, valid: float, test: float) -> Path:
    run = tmp / name
    run.mkdir()
    (run / "final.json").write_text(json.dumps({"valid": {"ndcg@10": valid}, "test": {"ndcg@10": test}}))
    return run


def test_winner_is_best_on_validation_even_when_test_disagrees(tmp_path: Path) -> None:
    scores = {"train.lr=1e-3": (0.05, 0.09), "train.lr=3e-4": (0.06, 0.01)}  # (valid, test)
    trained: list[tuple[str, int]] = []

    def cell(config: list[str], seed: int) -> Path:
        trained.append((config[0], seed))
        valid, test = scores[config[0]]
        return _run(tmp_path, f"{config[0]}_{seed}", valid + seed * 1e-4, test)

    grid = selection.parse_grid(["train.lr=1e-3,3e-4"])
    winner = selection.select("beauty", "sasrec_ce", grid, [0, 1], "ndcg@10", cell, tmp_path)
    assert winner == ["train.lr=3e-4"] and len(trained) == 4
    report = json.loads((tmp_path / "selection" / "beauty_sasrec_ce.json").read_text())
    assert report["selected_on"] == "valid/ndcg@10" and "test" not in json.dumps(report["candidates"])


def test_selecting_on_test_is_refused_and_grids_expand() -> None:
    for bad in ("test/ndcg@10", "test_ndcg@10", "loss"):
        with pytest.raises(SystemExit, match="validation metric only"):
            selection.check_metric(bad)
    assert selection.check_metric("valid/hr@10") == "hr@10"
    grid = selection.parse_grid(["a=1,2", "b=x,y,z"])
    assert len(selection.candidates(grid)) == 6 and selection.candidates([]) == [[]]
    assert selection.config_tag([]) == "" and selection.config_tag(["a=1"]) != selection.config_tag(["a=2"])


def test_missing_or_nan_validation_is_never_selected(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / "final.json").write_text('{"valid": {}, "test": {"ndcg@10": 0.9}}')
    assert selection.valid_score(run, "ndcg@10") == float("-inf")
