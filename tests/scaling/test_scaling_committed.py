"""Every sweep committed under docs/results refits to its committed fits.json, byte for byte.

Slow (a full 100-refit bootstrap per law, minutes on CPU): run with `pytest -m slow`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scalerec.io import read_json
from scalerec.scaling.fits import fit

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
SWEEPS = sorted(p.parent for p in RESULTS.glob("*/fits.json") if (p.parent / "results.parquet").is_file())


@pytest.mark.slow
@pytest.mark.parametrize("sweep", SWEEPS, ids=[p.name for p in SWEEPS])
def test_committed_fits_are_reproduced(sweep, tmp_path):
    shutil.copy(sweep / "results.parquet", tmp_path / "results.parquet")
    fit(tmp_path, n_boot=read_json(sweep / "fits.json")["n_boot"])
    assert (tmp_path / "fits.json").read_bytes() == (sweep / "fits.json").read_bytes()
