"""End to end: the demo chain at a tiny size (every stage runs and writes what it promises)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console

from scalerec.demo import DemoConfig, run_demo


def test_demo_chain_tiny(tmp_path: Path) -> None:
    cfg = DemoConfig(out=tmp_path / "demo", interactions=12_000, target_interactions=4_000, sizes=["tiny"],
                     epochs=2.0, subsets=["3K", "6K"], device="cpu", progress=False)
    printed = io.StringIO()
    result = run_demo(cfg, console=Console(file=printed, width=400))
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
    # the sweep's alpha_N, from fits["metrics"]["valid_loss"], is printed: a value with its CI or
    # the words "not identified" (it used to read a key that does not exist and print nothing)
    fits = json.loads(Path(result.paths["fits"]).read_text())
    joint = fits["metrics"]["valid_loss"]["joint"]
    (line,) = summary["fit"]
    if "coef" in joint:
        value = r"= \d+\.\d{3} \[\d+\.\d{3}, \d+\.\d{3}\] \(95% CI\)"
        assert re.match(rf"valid_loss: alpha_N ({value}|not identified by these runs: .+)$", line)
    else:  # this tiny demo has 4 runs for a 5-parameter law: it must say so, not print nothing
        assert line == f"valid_loss: no joint law ({joint['skipped']})"
    assert line in printed.getvalue()
    assert line in (cfg.out / "summary.md").read_text()
