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
    kw = dict(encoders=["text", "id"], holdout_sizes=["xs"], holdout_lr=1e-3)
    a = plan_runs(_spec(tmp_path, **kw), tmp_path / "out")
    b = plan_runs(_spec(tmp_path, **kw, holdout_lr_per_encoder={"id": 3e-4}), tmp_path / "out")
    assert [r.run_id for r in a if not r.holdout] == [r.run_id for r in b if not r.holdout]


def test_a_held_out_size_without_a_chosen_lr_is_refused(tmp_path) -> None:
    """world_v6's m2 named no LR and would have trained at the trainer's default, which no run chose."""
    with pytest.raises(ValueError, match="held-out size 'xs' has no learning rate"):
        _spec(tmp_path, holdout_sizes=["xs"])
    with pytest.raises(ValueError, match=r"for encoder\(s\) \['text'\]"):
        _spec(tmp_path, encoders=["text", "id"], holdout_sizes=["xs"], holdout_lr_per_encoder={"id": 3e-4})
    for ok in (
        {"holdout_lr": 1e-3},
        {"lr_per_size": {"xs": 1e-3}},
        {"lr": 1e-3},
        {"base": {"train": {"lr": 1e-3}}},
        {"encoders": ["text", "id"], "holdout_lr_per_encoder": {"text": 1e-3, "id": 3e-4}},
    ):
        assert _spec(tmp_path, holdout_sizes=["xs"], **ok).holdout_sizes == ["xs"]


def test_a_bad_name_or_lr_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="holdout_lr_per_encoder"):
        _spec(tmp_path, holdout_lr_per_encoder={"idd": 1e-3})
    with pytest.raises(ValueError, match="holdout_lr_per_encoder"):
        _spec(tmp_path, holdout_lr_per_encoder={"id": 2.0})


def test_a_held_out_lr_search_keeps_the_fixed_lr_run_and_adds_its_neighbours(tmp_path) -> None:
    """pooled_v3b's text m ran at one LR fixed in advance, ~4x what the sweep's own winners point to; a search
    around it adds runs beside the one already made (same id), and touches no fitted run."""
    kw = dict(
        encoders=["text", "id"], holdout_sizes=["xs"], holdout_lr_per_encoder={"text": 4e-3, "id": 3e-4}
    )
    before = plan_runs(_spec(tmp_path, **kw), tmp_path / "out")
    after = plan_runs(
        _spec(tmp_path, **kw, holdout_lr_search_per_encoder={"text": [0.25, 0.5, 1.0]}), tmp_path / "out"
    )
    held = sorted((r.encoder, r.lr) for r in after if r.holdout)
    assert held == [("id", 3e-4), ("text", 1e-3), ("text", 2e-3), ("text", 4e-3)]
    # the 4e-3 run (and every other) keeps its id
    assert {r.run_id for r in before} <= {r.run_id for r in after}
    assert len(after) == len(before) + 2


def test_the_held_out_runs_pick_their_lr_on_validation_and_stay_unfitted() -> None:
    from scalerec.scaling.cells import fitted_rows
    from scalerec.scaling.table import annotate

    def row(size: str, lr: float, loss: float, holdout: bool) -> dict:
        grid = "0.001,0.002,0.004" if holdout else "0.01"
        return {
            "encoder": "text",
            "size": size,
            "subset": "a",
            "seed": 0,
            "lr": lr,
            "lr_grid": grid,
            "valid_loss": loss,
            "status": "ok",
            "holdout": holdout,
        }

    rows = annotate(
        [
            row("tiny", 0.01, 5.0, False),
            row("m", 0.001, 4.2, True),
            row("m", 0.002, 4.0, True),
            row("m", 0.004, 4.9, True),
        ]
    )
    held = [r for r in fitted_rows(rows, "text") if r["holdout"]]
    assert [(r["lr"], r["lr_at_edge"]) for r in held] == [(0.002, False)]  # one per seed, interior LR


def test_a_bad_held_out_search_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="holdout_lr_search_per_encoder"):
        _spec(tmp_path, holdout_lr_search_per_encoder={"text": []})
    with pytest.raises(ValueError, match="holdout_lr_search_per_encoder"):
        _spec(tmp_path, holdout_lr_search_per_encoder={"txt": [0.5]})
