"""A sweep that is still running (a size missing, another with one LR of three) fits cleanly, says so
in fits.json, `scalerec fit` output and report.html, and two fits of it are byte-identical."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from scalerec.scaling.fits import fit, summary_lines
from scalerec.scaling.paper_law import PAPER_COLUMN
from scalerec.scaling.report import report
from scalerec.scaling.sweep import upsert_results
from scalerec.scaling.table import annotate

SIZES = {"s1": 1e5, "s2": 3e5, "s3": 1e6}
SUBSETS = {"d1": 1e5, "d2": 3e5, "d3": 1e6, "d4": 3e6}
LRS = (0.001, 0.003, 0.009)


def _row(enc: str, size: str, subset: str, seed: int, lr: float) -> dict:
    n, d = SIZES[size], SUBSETS[subset]
    noise = 0.01 * ((seed * 7 + LRS.index(lr) * 3 + len(subset)) % 5 - 2)  # deterministic "seed noise"
    loss = 2.0 + 40 * n**-0.3 + 60 * d**-0.25 + abs(LRS.index(lr) - 1) * 0.05 + noise
    return {
        "run_id": f"{enc}-{size}-{subset}-{seed}-{lr}",
        "status": "ok",
        "encoder": enc,
        "size": size,
        "subset": subset,
        "seed": seed,
        "lr": lr,
        "lr_grid": ",".join(str(x) for x in LRS),
        "n_params_non_embedding": n,
        "unique_targets": d,
        "targets_seen": d,
        "epochs": 1.0,
        "flops": 6 * n * d,
        "valid_loss": loss,
        "valid_ndcg@10": 0.5 / loss,
        PAPER_COLUMN: 1e-3 * d**0.2 / loss,
    }


def _write(out: Path, paper: bool = True) -> Path:
    rows = []
    for enc, size, subset, seed, lr in itertools.product(("text", "id"), SIZES, SUBSETS, (0, 1), LRS):
        r = _row(enc, size, subset, seed, lr)
        if enc == "text" and size == "s3":  # every run of this size failed
            r = {k: r[k] for k in ("run_id", "encoder", "size", "subset", "seed", "lr", "lr_grid")}
            r.update(status="failed", error="OutOfMemoryError: CUDA out of memory")
        elif enc == "text" and size == "s2" and lr != 0.003:
            continue  # not run yet
        if not paper:
            r.pop(PAPER_COLUMN, None)
        rows.append(r)
    out.mkdir(parents=True, exist_ok=True)
    upsert_results(out, annotate(rows))
    return out


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = _write(tmp_path_factory.mktemp("partial"))
    return out, fit(out, n_boot=4)


def test_incomplete_sizes_are_flagged_in_fits_json(fitted) -> None:
    _, fits = fitted
    flags = {(e["encoder"], e["size"]): e for e in fits["lr_coverage"] if not e["complete"]}
    assert set(flags) == {("text", "s2"), ("text", "s3")}
    assert "1 of 3 LRs done" in flags["text", "s2"]["note"]
    assert "no run finished" in flags["text", "s3"]["note"]
    assert all(e["complete"] for e in fits["lr_coverage"] if e["encoder"] == "id")


def test_fit_output_and_report_say_so(fitted) -> None:
    out, fits = fitted
    lines = summary_lines(fits)
    assert any(ln.startswith("LR search incomplete: text/s2: LR search incomplete, 1 of 3") for ln in lines)
    assert any(ln.startswith("LR search incomplete: text/s3: no run finished") for ln in lines)
    assert any(ln.startswith("saturation valid_loss/text (* = LR search incomplete)") for ln in lines)
    assert any(ln.startswith(f"paper metric ({PAPER_COLUMN}, id): NDCG@5 = ") for ln in lines)
    page = report(out).read_text()
    assert "<h2>LR search coverage</h2>" in page and "text/s3: no run finished" in page
    assert "<h2>Saturation size N_sat(D)</h2>" in page and "s2*" in page
    assert "The paper's metric" in page and "0.094" in page


def test_saturation_and_paper_law_per_encoder(fitted) -> None:
    _, fits = fitted
    assert [(e["encoder"], e["metric"]) for e in fits["saturation"]] == [
        ("text", "valid_loss"),
        ("text", "valid_ndcg@10"),
        ("id", "valid_loss"),
        ("id", "valid_ndcg@10"),
    ]
    text_sizes = {s["size"] for p in fits["saturation"][0]["points"] for s in p["sizes"]}
    assert text_sizes == {"s1", "s2"}
    assert [e["encoder"] for e in fits["paper_metric"]] == ["text", "id"]
    assert all(e["n_points"] == 4 and 0 < e["b"] < 1 for e in fits["paper_metric"])


def test_two_fits_are_byte_identical(fitted, tmp_path: Path) -> None:
    out, _ = fitted
    again = _write(tmp_path / "again")
    fit(again, n_boot=4)
    assert (again / "fits.json").read_bytes() == (out / "fits.json").read_bytes()


def test_without_the_paper_column_there_is_no_paper_law(tmp_path: Path) -> None:
    fits = fit(_write(tmp_path, paper=False), n_boot=0)
    assert "paper_metric" not in fits and "saturation" in fits


def test_fit_command_prints_each_line_whole_and_literal(fitted, tmp_path: Path) -> None:
    """Rich once turned "valid_loss:id:" into an emoji and wrapped long lines at 80 columns in a log."""
    from typer.testing import CliRunner

    from scalerec.cli import app

    out = _write(tmp_path / "cli")
    res = CliRunner().invoke(app, ["fit", str(out), "--n-boot", "2"])
    assert res.exit_code == 0, res.output
    assert "valid_loss:id: alpha_D = " in res.output and "🆔" not in res.output
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("LR search incomplete: text/s2")]
    assert line.endswith("its LR choice is not a real search")
