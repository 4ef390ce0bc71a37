"""The transfer report: table rows, paired comparisons, and the sentences it states."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from scalerec.errors import UserError
from scalerec.transfer.report import paired_diff, per_user, transfer_report


def test_per_user_metrics() -> None:
    ranks = np.array([1, 3, 10, 11, 0])
    np.testing.assert_allclose(per_user(ranks, "hr@10"), [1, 1, 1, 0, 0])
    np.testing.assert_allclose(per_user(ranks, "ndcg@10"), [1, 0.5, 1 / np.log2(11), 0, 0])
    np.testing.assert_allclose(per_user(ranks, "mrr"), [1, 1 / 3, 0.1, 1 / 11, 0])


def test_paired_diff_sign_and_ci() -> None:
    rng = np.random.default_rng(0)
    good = rng.integers(1, 5, 500)
    bad = good + 20
    cmp = paired_diff(good, bad, "ndcg@10", n_boot=200)
    assert cmp["diff"] > 0 and cmp["lo"] > 0
    same = paired_diff(good, good, "ndcg@10", n_boot=50)
    assert same["diff"] == 0 and same["lo"] == 0 == same["hi"]
    with pytest.raises(ValueError):
        paired_diff(good, good[:3], "mrr")


def _write(root: Path, strategy: str, ranks: np.ndarray, cold: dict | None = None, **extra: object) -> None:
    d = root / strategy
    d.mkdir(parents=True)
    overall = {m: float(per_user(ranks, m).mean()) for m in ("ndcg@10", "hr@10", "mrr")}
    overall["ci"] = {"ndcg@10": [overall["ndcg@10"] - 0.01, overall["ndcg@10"] + 0.01]}
    summary = {"format_version": 1, "strategy": strategy, "test": {"overall": overall, "cold": cold},
               "flops": 1e9, "wall_time_s": 2.0, **extra}
    (d / "transfer.json").write_text(json.dumps(summary))
    np.savez(d / "ranks.npz", test=ranks, most_popular=np.full_like(ranks, 30))


def test_report_states_findings(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(1, 40, 300)
    popular = {"overall": {"ndcg@10": 0.0, "hr@10": 0.0, "mrr": 0.03}}
    _write(tmp_path, "zero-shot", base + 5, most_popular=popular)
    _write(tmp_path, "scratch", base + 3)
    _write(tmp_path, "full", np.maximum(base - 10, 1),
           source={"before": {"ndcg@10": 0.2}, "after": {"ndcg@10": 0.1}})
    _write(tmp_path, "id-scratch", base, cold={"status": "unsupported", "reason": "ids"})
    md = transfer_report(tmp_path).read_text()
    assert "| full |" in md and "| most-popular |" in md
    assert "0.2000→0.1000" in md
    assert "cannot score" in md
    assert "- fine-tuning (full) beats scratch: NDCG@10 difference +" in md
    assert "- zero-shot beats most-popular" in md
    data = json.loads((tmp_path / "transfer_report.json").read_text())
    assert data["comparisons"]["best_finetune"] == "full"
    assert data["comparisons"]["best_vs_scratch"]["diff"] > 0


def test_report_needs_runs(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        transfer_report(tmp_path)
    with pytest.raises(UserError):
        transfer_report(tmp_path / "missing")


def test_best_strategy_is_chosen_on_validation(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    base = rng.integers(1, 40, 200)
    _write(tmp_path, "scratch", base)
    _write(tmp_path, "full", np.maximum(base - 5, 1), valid={"ndcg@10": 0.1})
    _write(tmp_path, "ewc", base, valid={"ndcg@10": 0.3})
    transfer_report(tmp_path)
    data = json.loads((tmp_path / "transfer_report.json").read_text())
    assert data["comparisons"]["best_finetune"] == "ewc"
    assert data["comparisons"]["best_vs_scratch"]["diff"] == 0


def test_report_module_does_not_import_torch() -> None:
    import subprocess

    code = "import sys, scalerec.transfer.report; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
