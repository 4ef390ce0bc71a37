"""`benchmarks/transfer_v2.py --cpu-small` end to end on the real datasets (capped to a few hundred
users): prepare → every cell kind in both phases of LR choice → report and plots; a rerun finds every
cell finished. Slow (a few minutes on 2 cores); skips without ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_scripts import load_script


def _bench():
    return load_script("benchmarks/transfer_v2.py", "transfer_v2_bench", register=True)


@pytest.mark.slow
def test_cpu_small_end_to_end(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bench = _bench()
    argv = ["--cpu-small", "--work", str(tmp_path / "work"), "--results", str(tmp_path / "report")]
    assert bench.main(argv) == 0
    rows = [json.loads(x) for x in (tmp_path / "report" / "results.jsonl").read_text().splitlines()]
    kinds = {r["kind"] for r in rows}
    assert kinds == {"pretrain", "popular", "baseline", "finetune"}
    scored = [r for r in rows if r["kind"] != "pretrain"]
    assert all({"overall", "cold", "rare"} <= set(r["test"]) for r in scored)
    n_test = {r["test"]["overall"]["n"] for r in scored}
    assert len(n_test) == 1  # every cell ranks the same test users, whatever its fraction
    assert {r["phase"] for r in rows if r["kind"] == "finetune"} == {2, 3}
    md = (tmp_path / "report" / "transfer_v2.md").read_text()
    assert "## Finding" in md and "beauty:" in md and "| tuned sasrec_ce |" in md
    assert (tmp_path / "report" / "beauty" / "transfer_vs_fraction.png").is_file()
    stamps = {p.name: p.stat().st_mtime for p in (tmp_path / "work" / "cells").glob("*.json")}
    capsys.readouterr()
    assert bench.main(argv) == 0  # resumable: nothing left to run
    out = capsys.readouterr().out
    assert '"event": "cell"' not in out and '"left": 0' in out
    assert stamps == {p.name: p.stat().st_mtime for p in (tmp_path / "work" / "cells").glob("*.json")}


def test_the_report_stays_beside_the_cells_unless_asked(tmp_path: Path) -> None:
    """A run without --results writes its report under its work dir, never among the committed results of
    every target in docs/results/transfer_v2 (a one-target Office pass once dropped a report there)."""
    bench = _bench()
    base = ["--work", str(tmp_path / "w"), "--device", "cpu"]
    assert bench.parse_args(base).results == tmp_path / "w" / "report"
    assert bench.parse_args([*base, "--results", str(tmp_path / "r")]).results == tmp_path / "r"
