"""A tiny real sweep on CPU: synthetic dump → dataset with nested subsets → token tables →
2 sizes × 2 subsets × a few steps → results table → fits.json → report.html."""

from __future__ import annotations

import json


def test_tiny_sweep_end_to_end(tmp_path):
    from scalerec.data.build.prepare import PrepareConfig, prepare
    from scalerec.data.ingest.synthetic_formats import synthesize
    from scalerec.scaling.report import report
    from scalerec.scaling.spec import SweepSpec
    from scalerec.scaling.sweep import read_results, run_sweep
    from scalerec.text import build_token_table

    raw = synthesize("amazon2018", 6_000, tmp_path / "raw", seed=1)
    prepare(
        PrepareConfig(
            source="amazon2018",
            ratings=[raw["ratings"]],
            meta=[raw["meta"]],
            out=tmp_path / "ds",
            subsets=["2K", "4K"],
        )
    )
    for label in ("2K", "4K"):
        build_token_table(tmp_path / "ds" / "subsets" / label, tmp_path / "tok" / label, vocab_size=500)
    spec = SweepSpec(
        dataset=str(tmp_path / "ds"),
        tokens=str(tmp_path / "tok" / "{subset}"),
        sizes=["tiny", "xs"],
        subsets=["2K", "4K"],
        max_steps=4,
        device="cpu",
        base={
            "train": {"negatives": 32, "batch_size": 16, "log_every": 2},
            "eval": {"max_users": 64, "patience": 0, "batch_size": 64},
        },
    )
    out = tmp_path / "sweep"
    rows = run_sweep(spec, out)
    assert [r["status"] for r in rows] == ["ok"] * 4, [r.get("error") for r in rows]
    table = read_results(out)
    assert all(r["valid_loss"] > 0 and r["flops"] > 0 and r["n_params_non_embedding"] > 0 for r in table)
    assert len({r["n_params_non_embedding"] for r in table}) == 2
    html = report(out, n_boot=5)
    assert html.is_file() and json.loads((out / "fits.json").read_text())["n_runs_ok"] == 4
