"""End to end: the demo chain at a tiny size (every stage runs and writes what it promises)."""

from __future__ import annotations

import json
from pathlib import Path

from scalerec.demo import DemoConfig, run_demo


def test_demo_chain_tiny(tmp_path: Path) -> None:
    cfg = DemoConfig(out=tmp_path / "demo", interactions=12_000, target_interactions=4_000, sizes=["tiny"],
                     epochs=2.0, subsets=["3K", "6K"], device="cpu", progress=False)
    result = run_demo(cfg)
    for key in ("dataset", "card", "tokens", "runs", "sweep", "fits", "report", "transfer_report",
                "summary", "summary_html"):
        assert Path(result.paths[key]).exists(), key
    assert (Path(result.paths["runs"]) / "tiny" / "final.json").is_file()
    summary = json.loads((cfg.out / "summary.json").read_text())
    assert summary["metrics"]["model tiny"]["ndcg@10"] > 0
    assert "most-popular" in summary["metrics"]
    assert {"target domain: zero-shot", "target domain: full"} <= set(summary["metrics"])
    assert "data:image/png;base64," in Path(result.paths["summary_html"]).read_text()
    assert "<img" in Path(result.paths["report"]).read_text()
