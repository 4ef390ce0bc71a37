"""Every sweep committed under docs/results refits to its committed fits.json.

Same machine, same thread count: byte for byte (`test_scaling_fits.py` checks two fits of one table).
Another machine: every string, flag and count the same (so every "identified" / "not identified" verdict),
every number to 2% (RTOL). Why not bytes, nor 6 digits as first claimed: BLAS kernels change the last bits of
the solver's arithmetic, and on a flat objective the solver stops at a slightly different point. Measured on
2026-12-07 on the 2-core AMD EPYC VM (OpenBLAS DYNAMIC_ARCH), against fits committed on 2026-12-06: 5 of 9
sweeps differ beyond 1e-6, by at most 1.5e-3 relative in a bootstrap bound (pooled_v2), 1.2e-4 in a floor E
(pooled_v3), 9.9e-3 in a univariate fit's E (world_v2_smoke); forcing OpenBLAS kernels (OPENBLAS_CORETYPE
Haswell, SkylakeX, Zen, Sandybridge) gives four more sets of last digits, none the committed one. One number
is exempt: the exponent of a term whose amplitude is ~0 (`A_N` = 7.9e-19 in pooled_v3's ID interpolation
check), which the data does not determine at all (32% apart between machines); its amplitude is compared.

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
RTOL = 2e-2
NULL_AMPLITUDE = 1e-12  # a term this small contributes nothing, so its exponent is arbitrary


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _undetermined_exponents(coef: dict) -> set[str]:
    """`alpha_X` of a law whose amplitude `A_X` is ~0 in both fits' view: no data constrains it."""
    return {
        "alpha_" + k[2:]
        for k, v in coef.items()
        if k.startswith("A_") and _number(v) and abs(v) < NULL_AMPLITUDE and "alpha_" + k[2:] in coef
    }


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two fits.json trees differ: structure, strings and flags exactly, numbers beyond RTOL."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a.keys() ^ b.keys())}"]
        skip = (
            _undetermined_exponents(a) & _undetermined_exponents(b)
            if path.endswith("/coef")
            else set()
        )
        return [d for k in a if k not in skip for d in differences(a[k], b[k], f"{path}/{k}")]
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


def test_differences_reads_numbers_to_two_percent_and_the_rest_exactly():
    assert differences({"a": [1.0, "x", True]}, {"a": [1.0 + 1e-9, "x", True]}) == []
    assert differences({"a": 1.0}, {"a": 1.01}) == []
    assert differences({"a": 1.0}, {"a": 1.03}) == ["/a: 1.0 vs 1.03"]
    assert differences({"a": True}, {"a": False}) and differences({"a": "x"}, {"a": "y"})
    assert differences({"a": [1]}, {"a": [1, 2]}) and differences({"a": 1}, {"b": 1})


def test_only_the_exponent_of_a_null_term_is_exempt():
    null = {"coef": {"E": 1.0, "A_N": 1e-19, "alpha_N": 0.16, "A_D": 20.0, "alpha_D": 0.07}}
    moved = {"coef": {"E": 1.0, "A_N": 2e-19, "alpha_N": 0.50, "A_D": 20.0, "alpha_D": 0.07}}
    assert differences(null, moved) == []
    live = {"coef": {**null["coef"], "A_N": 0.5}}
    assert differences(live, {"coef": {**moved["coef"], "A_N": 0.5}}) == ["/coef/alpha_N: 0.16 vs 0.5"]
    assert differences(null, {"coef": {**moved["coef"], "alpha_D": 0.5}}) == ["/coef/alpha_D: 0.07 vs 0.5"]


@pytest.mark.slow
@pytest.mark.parametrize("sweep", SWEEPS, ids=[p.name for p in SWEEPS])
def test_committed_fits_are_reproduced(sweep, tmp_path):
    shutil.copy(sweep / "results.parquet", tmp_path / "results.parquet")
    fit(tmp_path, n_boot=read_json(sweep / "fits.json")["n_boot"])
    found = differences(read_json(sweep / "fits.json"), read_json(tmp_path / "fits.json"))
    assert not found, f"{len(found)} differences, first: {found[:5]}"
