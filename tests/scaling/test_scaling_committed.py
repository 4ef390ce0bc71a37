"""Every sweep committed under docs/results refits to its committed fits.json.

Same machine, same thread count: byte for byte (`test_scaling_fits.py` checks two fits of one table).
Another machine: every string, flag and count the same, every number to 6 significant digits. Why not
bytes across machines: BLAS kernels and thread counts change the last bits of the solver's arithmetic;
the fitter's tie rule (`solver.best`) keeps those bits from choosing another optimum, and what is left is
rounding noise in the numbers.

Slow (a full 100-refit bootstrap per law, minutes on CPU): run with `pytest -m slow`."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from scalerec.io import read_json
from scalerec.scaling.fits import fit

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
SWEEPS = sorted(p.parent for p in RESULTS.glob("*/fits.json") if (p.parent / "results.parquet").is_file())
RTOL = 1e-6


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two fits.json trees differ: structure, strings and flags exactly, numbers beyond RTOL."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a.keys() ^ b.keys())}"]
        return [d for k in a for d in differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in differences(x, y, f"{path}[{i}]")]
    if _number(a) and _number(b):
        if (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-12):
            return []
        return [f"{path}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def test_differences_reads_numbers_to_six_digits_and_the_rest_exactly():
    assert differences({"a": [1.0, "x", True]}, {"a": [1.0 + 1e-9, "x", True]}) == []
    assert differences({"a": 1.0}, {"a": 1.001}) == ["/a: 1.0 vs 1.001"]
    assert differences({"a": True}, {"a": False}) and differences({"a": "x"}, {"a": "y"})
    assert differences({"a": [1]}, {"a": [1, 2]}) and differences({"a": 1}, {"b": 1})


@pytest.mark.slow
@pytest.mark.parametrize("sweep", SWEEPS, ids=[p.name for p in SWEEPS])
def test_committed_fits_are_reproduced(sweep, tmp_path):
    shutil.copy(sweep / "results.parquet", tmp_path / "results.parquet")
    fit(tmp_path, n_boot=read_json(sweep / "fits.json")["n_boot"])
    found = differences(read_json(sweep / "fits.json"), read_json(tmp_path / "fits.json"))
    assert not found, f"{len(found)} differences, first: {found[:5]}"
