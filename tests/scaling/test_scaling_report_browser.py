"""report.html as a reader sees it: rendered by headless Chromium (skipped when it is absent).

CI installs it with `apt-get update && apt-get install -y chromium` (Debian)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from scalerec.scaling.report import report
from scalerec.scaling.sweep import upsert_results

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


def _no_size_effect_rows() -> list[dict]:
    """Loss depends on D only: alpha_N cannot be identified, so the report must say so."""
    rng = np.random.default_rng(0)
    rows = []
    for i, n in enumerate(np.geomspace(3e4, 3e7, 5)):
        for j, d in enumerate(np.geomspace(1e5, 1e7, 4)):
            loss = (2.0 + 300 * d**-0.3) * np.exp(rng.normal(0, 0.01))
            rows.append(
                {
                    "run_id": f"r{i}{j}",
                    "size": f"s{i}",
                    "subset": f"d{j}",
                    "seed": 0,
                    "status": "ok",
                    "n_params_non_embedding": float(n),
                    "targets_seen": float(d),
                    "flops": 6 * n * d,
                    "valid_loss": float(loss),
                }
            )
    return rows


def _chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    upsert_results(out, _no_size_effect_rows())
    return report(out, n_boot=10)


def test_rendered_report_shows_the_flags_and_no_allocation(page):
    dom = _chromium("--dump-dom", page.as_uri()).stdout
    assert "<figcaption>Figure 1 (valid_loss)." in dom
    assert "alpha_N not identified" in dom
    assert "Not shown" in dom and "alpha_N not identified by these runs" in dom
    assert "n_opt" not in dom  # no compute-optimal table built on the flagged exponent
    assert "valid_loss_vs_flops_by_N.png" not in dom  # captions, not file names


def test_screenshot_is_not_blank(page, tmp_path):
    shot = tmp_path / "report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.std() > 0.05  # text, tables and figures, not an empty page
