"""Twins with their own LR search: `lr_search_per_encoder` widens one encoder's grid without
touching the other's runs or the ids of runs already trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalerec.scaling.spec import SweepSpec, plan_runs


def _spec(tmp_path: Path, **kw) -> SweepSpec:
    sub = tmp_path / "ds" / "subsets" / "1K"
    sub.mkdir(parents=True, exist_ok=True)
    (sub / "card.json").write_text(json.dumps({"n_interactions": 1000, "n_users": 100, "n_items": 50}))
    base = dict(
        dataset=str(tmp_path / "ds"), sizes=["tiny"], subsets=["1K"], seeds=[0], epochs=1.0,
        encoders=["text", "id"], lr_per_size={"tiny": 1e-3}, lr_search=[0.5, 1.0, 2.0],
    )
    return SweepSpec(**{**base, **kw})


def test_one_twin_gets_a_wider_grid_and_old_runs_keep_their_ids(tmp_path):
    plain = plan_runs(_spec(tmp_path), tmp_path / "out")
    wider = plan_runs(_spec(tmp_path, lr_search_per_encoder={"text": [0.5, 1.0, 2.0, 4.0]}), tmp_path / "out")
    lrs = {e: sorted(r.lr for r in wider if r.encoder == e) for e in ("text", "id")}
    assert lrs == {"text": [5e-4, 1e-3, 2e-3, 4e-3], "id": [5e-4, 1e-3, 2e-3]}
    assert {r.run_id for r in plain} < {r.run_id for r in wider}  # only the new point is new
    assert len(wider) == len(plain) + 1
    assert all(r.lr_grid == (5e-4, 1e-3, 2e-3, 4e-3) for r in wider if r.encoder == "text")


def test_extra_seeds_follow_each_twins_own_centre(tmp_path):
    spec = _spec(tmp_path, extra_seeds=[1], extra_seed_sizes=["tiny"],
                 lr_search_per_encoder={"text": [1.0, 3.0, 9.0]})
    runs = plan_runs(spec, tmp_path / "out")
    seeded = {(r.encoder, r.lr) for r in runs if r.seed == 1}
    assert seeded == {("text", 1e-3), ("id", 1e-3)}


@pytest.mark.parametrize("bad", [{"txt": [1.0]}, {"text": []}, {"id": [1.0, 0.0]}])
def test_bad_entries_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="lr_search_per_encoder"):
        _spec(tmp_path, lr_search_per_encoder=bad)
