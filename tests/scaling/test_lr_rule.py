"""scaling.lr_rule: the LR a held-out size trains at, fitted on the sizes below it (validation only)."""

from __future__ import annotations

import math

import pytest

from scalerec.scaling.lr_rule import fit_lr_rule, size_point


def _rows(size: str, n: int, lr_opt: float, centre: float, *, subset="full@15000", targets=192e6,
          seeds=(0,), extra_seeds=(1, 2), holdout=False) -> list[dict]:
    """A size's LR search on `seeds` (x1/3, 1, 3 of `centre`), its extra seeds at the centre only; validation
    loss exactly quadratic in log LR around `lr_opt`, so the parabola's vertex is `lr_opt` itself."""
    rows = []
    for seed in (*seeds, *extra_seeds):
        for mult in ((1 / 3, 1.0, 3.0) if seed in seeds else (1.0,)):
            lr = centre * mult
            loss = 2.5 + 0.1 * (math.log(lr) - math.log(lr_opt)) ** 2 + (0.5 if seed in extra_seeds else 0.0)
            rows.append({"size": size, "n_params_non_embedding": n, "subset": subset, "targets_seen": targets,
                         "seed": seed, "lr": lr, "valid_loss": loss, "status": "ok", "holdout": holdout,
                         "encoder": "id"})
    return rows


def test_the_rule_goes_through_each_sizes_sub_grid_optimum_and_extrapolates_its_power_law():
    """LR = 0.5·N^-0.5 exactly; the grids are centred off the optimum (the winner is one grid point, the
    vertex the true optimum); extra seeds ran the centre only and sit 0.5 nats worse (they must not move the
    search); a smaller-D cell is ignored; a held-out row is never fitted; a failed run is ignored."""
    truth = {"tiny": 28_128, "xs": 107_456, "s": 808_064, "m": 6_429_952}
    rows = []
    for size, n in truth.items():
        opt = 0.5 * n**-0.5
        rows += _rows(size, n, opt, centre=opt * 1.4)
        rows += _rows(size, n, opt * 5, centre=opt * 5, subset="full@937", targets=12e6)  # other D
    rows += _rows("m2", 14_363_520, 1.0, centre=1.0, holdout=True)
    rows.append({**rows[0], "status": "failed", "valid_loss": float("nan"), "lr": 10.0})
    rule = fit_lr_rule(rows)
    assert [p.size for p in rule.points] == ["tiny", "xs", "s", "m"]
    assert all(p.subset == "full@15000" and not p.at_edge for p in rule.points)
    assert rule.slope == pytest.approx(-0.5, abs=1e-9)
    assert rule.predict(14_363_520) == pytest.approx(0.5 * 14_363_520**-0.5, rel=1e-9)
    assert rule.points[0].lr_winner == pytest.approx(0.5 * 28_128**-0.5 * 1.4)   # the grid point nearest


def test_a_winner_at_the_grids_edge_is_flagged_and_kept_as_its_own_point():
    rows = _rows("tiny", 28_128, 1e-2, centre=1e-3)      # optimum 10x above the centre: top of the grid wins
    rows += _rows("m", 6_429_952, 1e-3, centre=1e-3)
    point = size_point("tiny", rows[:7])
    assert point is not None and point.at_edge and point.lr_opt == pytest.approx(3e-3)
    rule = fit_lr_rule(rows)
    assert [p.at_edge for p in rule.points] == [True, False]


def test_a_rule_needs_two_searched_sizes():
    with pytest.raises(ValueError, match=">= 2 sizes"):
        fit_lr_rule(_rows("m", 6_429_952, 1e-3, centre=1e-3))
    one_lr = [r for r in _rows("tiny", 28_128, 1e-2, centre=1e-2) if r["lr"] == pytest.approx(1e-2)]
    assert size_point("tiny", one_lr) is None                                      # no search ran


def test_the_script_prints_the_spec_line_for_a_held_out_n(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench_scripts import load_script

    rows = _rows("tiny", 28_128, 0.5 * 28_128**-0.5, centre=0.5 * 28_128**-0.5)
    rows += _rows("m", 6_429_952, 0.5 * 6_429_952**-0.5, centre=0.5 * 6_429_952**-0.5 * 1.3)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "results.parquet")
    script = load_script("benchmarks/holdout_lr.py")
    assert script.main([str(tmp_path / "results.parquet"), "--n", "14363520"]) == 0
    out = capsys.readouterr().out
    assert f"holdout_lr = {0.5 * 14_363_520**-0.5:.3g}" in out and "EDGE" not in out
