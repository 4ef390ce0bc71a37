"""`fit(DIR)` on a results table generated from a known law: the fits, CIs and checks come back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalerec.errors import UserError
from scalerec.scaling.fits import fit, load_points
from scalerec.scaling.sweep import upsert_results


def synthetic_rows(noise: float = 0.0, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(np.geomspace(2e4, 5e6, 5)):
        for j, d in enumerate(np.geomspace(1e5, 1e7, 4)):
            loss = (1.2 + 30 * n**-0.3 + 200 * d**-0.35) * np.exp(rng.normal(0, noise))
            for lr, bump in ((1e-3, 0.0), (3e-3, 0.05)):  # a worse LR that fit must drop
                rows.append(
                    {
                        "run_id": f"r{i}{j}{lr}",
                        "size": f"s{i}",
                        "subset": f"d{j}",
                        "seed": 0,
                        "lr": lr,
                        "n_params_non_embedding": float(n),
                        "targets_seen": float(d),
                        "flops": 6 * n * d,
                        "wall_time_s": 1.0,
                        "status": "ok",
                        "valid_loss": loss + bump,
                        "valid_ndcg@10": 0.5 - 0.1 * loss + (0 if bump == 0 else -0.01),
                    }
                )
    rows.append(
        {
            "run_id": "bad",
            "size": "s9",
            "subset": "d0",
            "seed": 0,
            "lr": 1e-3,
            "status": "failed",
            "error": "boom",
        }
    )
    return rows


def test_load_points_keeps_best_lr_and_drops_failures():
    p = load_points(synthetic_rows(), "valid_loss", higher=False)
    assert p.y.size == 20
    assert all(rid.endswith("0.001") for rid in p.run_id)


def test_fit_writes_fits_json_with_laws_and_checks(tmp_path):
    upsert_results(tmp_path, synthetic_rows(noise=0.0))
    out = fit(tmp_path, n_boot=10)
    assert json.loads((tmp_path / "fits.json").read_text())["n_runs"] == 41
    loss = out["metrics"]["valid_loss"]
    coef = loss["joint"]["coef"]
    assert coef["alpha_N"] == pytest.approx(0.3, rel=0.02)
    assert coef["alpha_D"] == pytest.approx(0.35, rel=0.02)
    co = loss["compute_optimal"]
    assert co["a"] == pytest.approx(0.35 / 0.65, rel=0.03)
    assert co["a"] + co["b"] == pytest.approx(1.0, abs=0.02)
    assert co["flops_relation"]["gamma"] == pytest.approx(1.0)
    interp = loss["interpolation_check"]
    assert interp["mean_rel_error"] < 0.01 and interp["n_heldout"] == 4
    ex = loss["extrapolation"]  # 5e6 params at 1e7 targets: 4x the N and >= 4x the compute of 3.2e5
    assert ex["heldout_run_ids"] == ["r430.001"] and ex["n_fit"] == 12
    assert ex["table"][0]["mean_rel_error"] < 1e-6 and ex["law_beats_baselines"]
    assert loss["joint"]["unidentified"] == []
    assert set(loss["univariate"]) == {"N", "D", "C"}
    ndcg = out["metrics"]["valid_ndcg@10"]
    assert ndcg["higher_is_better"] and "plain_power" in ndcg and "joint" in ndcg


def test_fit_without_table_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="results.parquet"):
        fit(tmp_path)


def test_report_is_self_contained_with_figures(tmp_path):
    from scalerec.scaling.report import report

    upsert_results(tmp_path, synthetic_rows(noise=0.01))
    path = report(tmp_path, n_boot=5)
    page = path.read_text()
    assert page.count("data:image/png;base64,") >= 10
    assert "extrapolation test" in page and "compute-optimal allocation" in page
    assert "alpha_N not identified" not in page and "Figure 1 (valid_loss)." in page
    assert "r000.001" in page and "boom" in page  # every run, failures included
    assert len(list((tmp_path / "figures").glob("*.png"))) >= 10


def test_two_fit_commands_write_identical_fits_json(tmp_path):
    """Reproducibility: every start refined, fixed bootstrap seeds, no timestamp in the file."""
    from typer.testing import CliRunner

    from scalerec.cli import app

    upsert_results(tmp_path, synthetic_rows(noise=0.01))
    runner = CliRunner()
    outputs = []
    for _ in range(2):
        res = runner.invoke(app, ["fit", str(tmp_path), "--n-boot", "5"])
        assert res.exit_code == 0, res.output
        outputs.append((tmp_path / "fits.json").read_bytes())
    assert outputs[0] == outputs[1]
    assert "alpha_N = 0.3" in res.output and "extrapolation to 1 held-out runs" in res.output


def test_report_refits_a_fits_json_from_an_older_fitter(tmp_path):
    from scalerec.scaling.report import report

    upsert_results(tmp_path, synthetic_rows(noise=0.01))
    (tmp_path / "fits.json").write_text(json.dumps({"format_version": 1, "metrics": {}}))
    report(tmp_path, n_boot=3)
    assert json.loads((tmp_path / "fits.json").read_text())["format_version"] == 2
