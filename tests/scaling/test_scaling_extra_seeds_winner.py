"""`extra_seeds_at_winner`: the extra seeds run after the LR search, at the LR the searched seeds chose,
not at the centre fixed in advance (pooled_v3's extra seeds replicated rejected ID LRs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalerec.scaling.spec import CENTRE, SweepSpec, plan_runs, search_winners
from scalerec.scaling.sweep import read_results, run_sweep

CALLS: list[tuple[str, int, float]] = []


def low_lr_wins(cfg):
    """Validation loss rises with the LR, so the grid's lowest LR is every seed's choice (not the centre);
    the `xs` model fails at seed 7 (a search with a hole)."""
    CALLS.append((cfg.model_size, cfg.run.seed, cfg.train.lr))
    if cfg.model_size == "xs" and cfg.run.seed == 7:
        raise RuntimeError("simulated divergence")
    rdir = Path(cfg.run.out) / cfg.run.name
    rdir.mkdir(parents=True, exist_ok=True)
    final = {
        "params": {"total": 2000, "non_embedding": 1000},
        "flops": {"per_target": 6e3, "total": 6e6},
        "targets_seen": 1000,
        "steps": 10,
        "epochs": 1.0,
        "wall_time_s": 0.1,
        "device": "cpu",
        "valid": {"loss": 2.0 + 100 * cfg.train.lr + 0.01 * cfg.run.seed, "ndcg@10": 0.1},
        "test": {"ndcg@10": 0.09},
    }
    (rdir / "final.json").write_text(json.dumps(final))


def _spec(tmp_path: Path, **kw) -> SweepSpec:
    sub = tmp_path / "ds" / "subsets" / "1K"
    sub.mkdir(parents=True, exist_ok=True)
    (sub / "card.json").write_text(json.dumps({"n_interactions": 1000, "n_users": 100, "n_items": 50}))
    base = dict(
        dataset=str(tmp_path / "ds"),
        sizes=["tiny", "xs"],
        subsets=["1K"],
        seeds=[0, 1],
        extra_seeds=[2],
        extra_seed_sizes=["tiny", "xs"],
        lr_search=[0.333, 1.0, 3.0],
        extra_seeds_at_winner=True,
        epochs=1.0,
        base={"model": {"item_encoder": "id"}},
    )
    return SweepSpec(**{**base, **kw})


def test_extra_seeds_run_at_the_searched_winner_and_resume(tmp_path) -> None:
    spec, out = _spec(tmp_path), tmp_path / "out"
    CALLS.clear()
    rows = run_sweep(spec, out, train_fn=low_lr_wins)
    extra = [(size, lr) for size, seed, lr in CALLS if seed == 2]
    lowest = {r.size: min(r.lr_grid) for r in plan_runs(spec, out)}
    assert extra == [("tiny", lowest["tiny"]), ("xs", lowest["xs"])]  # after the search, at its winner
    assert [seed for _, seed, _ in CALLS[:12]] == [0, 1] * 6  # phase 1 holds no extra seed
    assert len(rows) == 2 * (3 * 2 + 1)
    table = read_results(out)
    assert all(r["lr_selected"] for r in table if r["seed"] == 2)  # a replicate of the winner
    CALLS.clear()
    run_sweep(spec, out, train_fn=low_lr_wins)
    assert CALLS == []  # both phases resume


def test_a_search_with_a_failed_run_gets_no_extra_seed(tmp_path) -> None:
    spec, out = _spec(tmp_path, seeds=[0, 7]), tmp_path / "out"
    CALLS.clear()
    run_sweep(spec, out, train_fn=low_lr_wins)
    assert [size for size, seed, _ in CALLS if seed == 2] == ["tiny"]
    assert len([c for c in CALLS if c[:2] == ("xs", 7)]) == 3  # each failed run once, not again in phase 2


def test_the_centre_rule_is_unchanged_and_the_dry_run_costs_the_extra_seeds(tmp_path) -> None:
    centre = plan_runs(_spec(tmp_path, extra_seeds_at_winner=False), tmp_path / "out")
    planned = plan_runs(_spec(tmp_path), tmp_path / "out", CENTRE)
    assert [r.run_id for r in planned] == [r.run_id for r in centre]  # same runs and ids as the old rule
    assert len(plan_runs(_spec(tmp_path), tmp_path / "out")) == len(centre) - 2  # before any search


def test_winner_is_the_majority_choice_then_the_lower_mean() -> None:
    spec = SweepSpec(dataset="d", sizes=["tiny"], subsets=["a"], seeds=[0, 1, 3], epochs=1.0)

    def row(seed: int, lr: float, loss: float, status: str = "ok") -> dict:
        return {
            "encoder": "id",
            "size": "tiny",
            "subset": "a",
            "seed": seed,
            "lr": lr,
            "lr_grid": "0.001,0.003",
            "valid_loss": loss,
            "status": status,
        }

    rows = [
        row(0, 0.001, 1.0),
        row(0, 0.003, 2.0),
        row(1, 0.001, 1.0),
        row(1, 0.003, 2.0),
        row(3, 0.001, 9.0),
        row(3, 0.003, 2.0),
    ]
    assert search_winners(spec, rows) == {("id", "tiny", "a"): 0.001}  # two seeds of three, whatever the mean
    rows[-1] = row(3, 0.003, float("nan"))
    assert search_winners(spec, rows) == {}  # a search with a hole has no winner
    assert search_winners(spec, rows[:4]) == {}  # seed 3 has not run


def test_refused_with_branches_or_all_lrs(tmp_path) -> None:
    with pytest.raises(ValueError, match="extra_seeds_at_winner"):
        _spec(tmp_path, extra_seeds_all_lrs=True)
    with pytest.raises(ValueError, match="extra_seeds_at_winner"):
        _spec(tmp_path, branches=[0.5], max_steps=100, epochs=None)


def test_an_lr_the_table_rounds_still_finds_its_winner(tmp_path) -> None:
    """results.parquet writes lr_grid with 6 significant digits; the winner is the runs' exact LR."""
    spec, out = _spec(tmp_path, sizes=["tiny"], lr_per_size={"tiny": 1.23456789e-3}), tmp_path / "out"
    CALLS.clear()
    run_sweep(spec, out, train_fn=low_lr_wins)
    assert [lr for _, seed, lr in CALLS if seed == 2] == [pytest.approx(1.23456789e-3 * 0.333, rel=1e-12)]


def test_a_held_out_size_with_one_lr_runs_its_extra_seed_at_once(tmp_path) -> None:
    spec = _spec(
        tmp_path, sizes=["tiny"], holdout_sizes=["xs"], holdout_lr=1e-3, extra_seed_sizes=["tiny", "xs"]
    )
    runs = plan_runs(spec, tmp_path / "out")  # phase 1: no search result yet
    assert sorted(r.seed for r in runs if r.holdout) == [0, 1, 2]
    assert sorted(r.seed for r in runs if not r.holdout) == [0, 0, 0, 1, 1, 1]


def test_a_dry_run_places_extra_seeds_at_the_winners_it_can_read(tmp_path) -> None:
    """A finished sweep's dry run (in its dir, or adopting its table elsewhere) has nothing left to do: the
    extra seeds ran at the winners, so costing them at the centre would list runs the sweep never makes
    (pooled_v3b's dry run after its last call showed 6 such 'missing' runs)."""
    spec, out = _spec(tmp_path), tmp_path / "out"
    run_sweep(spec, out, train_fn=low_lr_wins)
    here = run_sweep(spec, out, dry_run=True, calibrate=False)
    assert {r["status"] for r in here} == {"done"}
    table = out / "results.parquet"
    elsewhere = run_sweep(spec, tmp_path / "other", dry_run=True, calibrate=False, adopt=table)
    assert {r["status"] for r in elsewhere} == {"adopted"} and len(elsewhere) == len(here)
    fresh = run_sweep(spec, tmp_path / "fresh", dry_run=True, calibrate=False)  # nothing known: the centre
    assert len(fresh) == len(here) and {r["status"] for r in fresh} == {"missing"}
    centre = {(r["size"], r["lr"]) for r in fresh if r["seed"] == 2}
    assert centre != {(r["size"], r["lr"]) for r in here if r["seed"] == 2}
