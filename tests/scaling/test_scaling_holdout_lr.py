"""`holdout_lr_per_encoder`: each twin's held-out runs get their own LR (pooled_v3's text and ID winners sat
a decade apart, so one shared held-out LR would handicap one twin's extrapolation test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalerec.scaling.spec import SweepSpec, plan_runs


def _spec(tmp_path: Path, **kw) -> SweepSpec:
    sub = tmp_path / "ds" / "subsets" / "1K"
    sub.mkdir(parents=True, exist_ok=True)
    (sub / "card.json").write_text(json.dumps({"n_interactions": 1000, "n_users": 100, "n_items": 50}))
    base = dict(dataset=str(tmp_path / "ds"), sizes=["tiny"], subsets=["1K"], seeds=[0], epochs=1.0)
    return SweepSpec(**{**base, **kw})


def test_each_twin_gets_its_own_held_out_lr(tmp_path) -> None:
    spec = _spec(
        tmp_path,
        encoders=["text", "id"],
        holdout_sizes=["xs"],
        holdout_lr=5e-3,
        holdout_lr_per_encoder={"id": 3e-4},
    )
    held = {r.encoder: r.lr for r in plan_runs(spec, tmp_path / "out") if r.holdout}
    assert held == {"text": 5e-3, "id": 3e-4}  # the twin's own LR first, then holdout_lr


def test_fitted_runs_and_their_ids_are_unchanged(tmp_path) -> None:
    a = plan_runs(_spec(tmp_path, encoders=["text", "id"], holdout_sizes=["xs"]), tmp_path / "out")
    b = plan_runs(
        _spec(tmp_path, encoders=["text", "id"], holdout_sizes=["xs"], holdout_lr_per_encoder={"id": 3e-4}),
        tmp_path / "out",
    )
    assert [r.run_id for r in a if not r.holdout] == [r.run_id for r in b if not r.holdout]


def test_a_bad_name_or_lr_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="holdout_lr_per_encoder"):
        _spec(tmp_path, holdout_lr_per_encoder={"idd": 1e-3})
    with pytest.raises(ValueError, match="holdout_lr_per_encoder"):
        _spec(tmp_path, holdout_lr_per_encoder={"id": 2.0})
