"""The v2 sweep design on a tiny known-floor world with the real trainer: wsd trunks + cooldown
branches (each branch equals the independent run), LR search flags, seed spread, held-out runs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from scalerec.scaling.branches import _branch_step
from scalerec.scaling.spec import SweepSpec, plan_runs
from scalerec.scaling.sweep import prepare_world, run_sweep
from scalerec.scaling.table import annotate

WORLD = {"n_topics": 40, "variants": 3, "successors": 2, "length": 7, "eval_users": 24, "seed": 1}
BASE = {
    "train": {"loss": "full", "batch_size": 4, "warmup_steps": 1, "min_lr_ratio": 0.0, "log_every": 4},
    "eval": {"every_steps": 1000, "patience": 0},
    "data": {"max_len": 6},
}


def _spec(**kw) -> SweepSpec:
    values = dict(
        sizes=["tiny"], seeds=[0], max_steps=10, branches=[0.5], world=WORLD, base=BASE, device="cpu", lr=3e-3
    )
    return SweepSpec(**{**values, **kw})


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("wsd")
    spec = _spec(holdout_sizes=["xs"], holdout_scale=1.2)
    return out, spec, run_sweep(spec, out)


def test_trunk_branch_and_holdout_rows(swept):
    out, spec, rows = swept
    assert [r["role"] for r in rows] == ["trunk", "branch", "single"]
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    trunk, branch, held = rows
    assert branch["trunk_id"] == trunk["run_id"] and branch["branch_step"] == 4  # 5 steps, 1 decay
    assert (trunk["steps"], branch["steps"], held["steps"]) == (10, 5, 12)
    assert branch["unique_targets"] == 5 * 4 * 6 and branch["epochs"] == 1.0  # streamed: no repeats
    assert trunk["subset"] != branch["subset"]  # distinct D points of one (size, seed)
    assert held["holdout"] and not trunk["holdout"]
    assert trunk["bayes_floor"] == pytest.approx(branch["bayes_floor"]) and trunk["bayes_floor"] > 0


def test_branch_equals_the_independent_run(swept, tmp_path):
    """Resuming the trunk's stable phase and decaying gives the run of that length, bit for bit."""
    from scalerec.train import train

    out, spec, rows = swept
    branch_plan = [r for r in plan_runs(spec, out) if r.role == "branch"][0]
    branch_plan.cfg.run.out = str(tmp_path)
    fresh = train(branch_plan.cfg).final
    row = [r for r in rows if r["role"] == "branch"][0]
    assert row["run_id"] == branch_plan.run_id
    assert fresh["valid"]["loss"] == pytest.approx(row["valid_loss"], abs=1e-6)
    assert fresh["targets_seen"] == row["targets_seen"]


def test_rerun_trains_nothing(swept):
    out, spec, _ = swept
    calls = []
    rows = run_sweep(spec, out, train_fn=lambda cfg, resume=False: calls.append(cfg))
    assert not calls and all(r["status"] == "ok" for r in rows)


def test_a_moved_sweep_dir_resumes(swept, tmp_path):
    """Run ids do not depend on where the sweep dir lies (its own world is inside it)."""
    import shutil

    out, _, rows = swept
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(out, moved)
    calls = []
    again = run_sweep(_spec(holdout_sizes=["xs"], holdout_scale=1.2), moved,
                      train_fn=lambda cfg, resume=False: calls.append(cfg))
    assert not calls
    assert [r["run_id"] for r in again] == [r["run_id"] for r in rows]
    assert all(r["status"] == "ok" for r in again)


def test_dirs_named_by_the_old_location_dependent_ids_are_adopted(swept, tmp_path):
    """A sweep dir made before ids were location-independent (dirs named by a hash of the absolute
    world path that its sweep.json recorded) resumes after the upgrade, even after a move."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from scalerec.io import read_json
    from scalerec.scaling.spec import legacy_run_id
    from scalerec.scaling.sweep import prepare_world, read_results

    out, _, rows = swept
    old = tmp_path / "old"
    shutil.copytree(out, old)
    recorded = read_json(old / "sweep.json")["spec"]
    spec = _spec(holdout_sizes=["xs"], holdout_scale=1.2)
    prepare_world(spec, old)
    renamed = {}
    for run in plan_runs(spec, old):
        legacy = legacy_run_id(run.cfg, recorded["dataset"], recorded["tokens"])
        assert legacy != run.run_id
        (old / "runs" / run.run_id).rename(old / "runs" / legacy)
        renamed[run.run_id] = legacy
    table = pq.read_table(old / "results.parquet").to_pylist()
    for r in table:
        r["run_id"] = renamed[r["run_id"]]
    pq.write_table(pa.Table.from_pylist(table), old / "results.parquet")

    calls = []
    again = run_sweep(_spec(holdout_sizes=["xs"], holdout_scale=1.2), old,
                      train_fn=lambda cfg, resume=False: calls.append(cfg))
    assert not calls
    assert sorted(r["run_id"] for r in read_results(old)) == sorted(r["run_id"] for r in rows)
    assert [r["valid_loss"] for r in again] == [r["valid_loss"] for r in rows]
    assert not any((old / "runs" / legacy).exists() for legacy in renamed.values())


def test_plan_lr_search_extra_seeds_and_custom_sizes(tmp_path):
    spec = _spec(
        sizes=["tiny", "s2"],
        size_models={"s2": {"base": "s", "n_layers": 2}},
        lr_search=[0.5, 1.0, 2.0],
        extra_seeds=[1, 2],
        extra_seed_sizes=["s2"],
        branches=[0.25, 0.5],
        max_steps=40,
    )
    from scalerec.scaling.sweep import prepare_world

    prepare_world(spec, tmp_path)
    runs = plan_runs(spec, tmp_path)
    trunks = [r for r in runs if r.role == "trunk"]
    # tiny: 3 LRs x seed 0; s2: 3 LRs x seed 0 + seeds 1, 2 at its own LR
    assert sorted((r.size, r.seed) for r in trunks).count(("s2", 0)) == 3 and len(trunks) == 8
    assert len(runs) == 3 * len(trunks)
    s2 = [r for r in trunks if r.size == "s2"][0]
    assert s2.cfg.model.n_layers == 2 and s2.cfg.model.d_model == 128
    assert len({r.run_id for r in runs}) == len(runs)


def test_annotate_selects_lr_flags_the_edge_and_records_seed_spread():
    def row(size, lr, seed, loss):
        return {
            "run_id": f"{size}{lr}{seed}",
            "size": size,
            "subset": "w@10",
            "seed": seed,
            "lr": lr,
            "lr_grid": "0.001,0.002,0.004",
            "status": "ok",
            "valid_loss": loss,
            "holdout": False,
        }

    rows = annotate(
        [
            row("a", 0.001, 0, 3.0),
            row("a", 0.002, 0, 2.5),
            row("a", 0.004, 0, 2.7),
            row("b", 0.001, 0, 3.0),
            row("b", 0.002, 0, 3.1),
            row("b", 0.004, 0, 3.2),
            row("a", 0.002, 1, 2.7),
            row("a", 0.002, 2, 2.6),
        ]
    )
    sel = {(r["size"], r["seed"]): r for r in rows if r["lr_selected"]}
    assert sel[("a", 0)]["lr"] == 0.002 and sel[("a", 0)]["lr_at_edge"] is False
    assert sel[("b", 0)]["lr"] == 0.001 and sel[("b", 0)]["lr_at_edge"] is True
    spread = [r for r in rows if r["size"] == "a" and r["lr"] == 0.002][0]
    assert spread["n_seeds"] == 3 and spread["seed_std_valid_loss"] == pytest.approx(0.1)
    assert math.isclose(spread["seed_mean_valid_loss"], 2.6)


def _n_and_flops(spec: SweepSpec, size: str) -> tuple[int, float]:
    """Non-embedding N and training FLOPs per step of one size of a spec (analytic, as the trainer)."""
    from scalerec.model.sizes import flops_per_target, model_config, param_counts
    from scalerec.scaling.spec import _model_base

    ladder, fields = _model_base(spec, size)
    cfg = model_config(ladder, vocab_size=100_012, field_max_len={"title": 2}, max_len=50, **fields)
    t = spec.base["train"]
    per_step = t["batch_size"] * 50
    fpt = flops_per_target(cfg, t["negatives"], 50, batch_targets=per_step)["total"]
    return param_counts(cfg)["non_embedding"], fpt * per_step


def test_world_v2_spec_meets_the_design_bars():
    """≥ 5 fitted sizes over ≥ 1.5 decades of N; held-out runs ≥ 2x the largest fitted N and
    ≥ 4x its compute; 3 LRs; 3 seeds on ≥ a third of the sizes; nested D from wsd branches."""
    from pathlib import Path

    from scalerec.scaling.spec import load_spec

    root = Path(__file__).resolve().parents[2] / "configs" / "sweeps"
    spec = load_spec(root / "world_v2.toml")
    fitted = {s: _n_and_flops(spec, s) for s in spec.sizes}
    n = sorted(v[0] for v in fitted.values())
    assert len(n) >= 5 and math.log10(n[-1] / n[0]) >= 1.5
    top_flops = max(v[1] for v in fitted.values()) * spec.max_steps
    for size in spec.holdout_sizes:
        n_h, f_h = _n_and_flops(spec, size)
        assert n_h >= 2 * n[-1] and f_h * spec.max_steps * spec.holdout_scale >= 4 * top_flops
    assert len(spec.lr_search) >= 3 and len(set(spec.seeds + spec.extra_seeds)) >= 3
    assert 3 * len(spec.extra_seed_sizes) >= len(spec.sizes) and len(spec.branches) >= 3
    assert spec.world and spec.device == "cuda"
    smoke = load_spec(root / "world_v2_smoke.toml")
    assert smoke.device == "cpu" and smoke.branches and smoke.holdout_sizes
    pooled = load_spec(root / "pooled_v2.toml")
    assert pooled.encoders == ["text", "id"] and len(pooled.sizes) >= 5 and len(pooled.seeds) >= 2
    assert min(pooled.branches) * 4 <= 10**-1.5  # unique D: 1/128 of 4 epochs … 1 epoch


def test_a_run_without_branch_step_is_not_a_branch() -> None:
    """`run_group` reads each branch's step: a run without one fails with its name, not a TypeError."""
    cfg = SimpleNamespace(run=SimpleNamespace(name="s-1"))
    assert _branch_step(SimpleNamespace(branch_step=4, cfg=cfg)) == 4
    with pytest.raises(ValueError, match="s-1 is not a branch"):
        _branch_step(SimpleNamespace(branch_step=None, cfg=cfg))


def _copy_table(swept, dest, rewrite=None):
    """The sweep's results.parquet alone (as committed under docs/results), rows optionally rewritten."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out, _, _ = swept
    rows = pq.read_table(out / "results.parquet").to_pylist()
    dest.mkdir(parents=True)
    rows = [rewrite(r) if rewrite else r for r in rows]
    pq.write_table(pa.Table.from_pylist(rows), dest / "results.parquet")
    return dest


def test_runs_are_adopted_from_a_committed_table_and_only_new_cells_train(swept, tmp_path):
    """A committed results.parquet without its run dirs: a grown spec (one more seed) trains only the new
    seed's runs; the adopted rows keep their measurements and say where they came from."""
    _, _, rows = swept
    committed = _copy_table(swept, tmp_path / "committed")
    spec = _spec(holdout_sizes=["xs"], holdout_scale=1.2, seeds=[0, 1])
    preview = run_sweep(spec, tmp_path / "new", dry_run=True, calibrate=False, adopt=committed)
    assert sorted(r["status"] for r in preview) == ["adopted"] * 3 + ["missing"] * 3
    calls = []
    again = run_sweep(spec, tmp_path / "new", adopt=committed,
                      train_fn=lambda cfg, resume=False: calls.append(cfg))
    assert sorted(c.run.seed for c in calls) == [1, 1]  # the new trunk and held-out run, nothing else
    adopted = [r for r in again if r.get("adopted_from")]
    assert [r["run_id"] for r in adopted] == [r["run_id"] for r in rows]
    assert [r["valid_loss"] for r in adopted] == [r["valid_loss"] for r in rows]
    assert all(r["status"] == "ok" for r in adopted)


def test_adoption_needs_the_same_config(swept, tmp_path):
    committed = _copy_table(swept, tmp_path / "committed")
    calls = []
    spec = _spec(holdout_sizes=["xs"], holdout_scale=1.2, lr=1e-3)
    rows = run_sweep(spec, tmp_path / "new", adopt=committed,
                     train_fn=lambda cfg, resume=False: calls.append(cfg))
    # the trunk and the held-out run are trained (the branch then fails: the stub writes no checkpoint)
    assert {c.model_size for c in calls} == {"tiny", "xs"}
    assert not any(r.get("adopted_from") for r in rows)


def test_rows_hashed_under_another_dataset_path_are_adopted(swept, tmp_path):
    """A table from a machine where the dataset lay elsewhere (its ids hash that absolute path, as
    pooled_v2's do): matched by recomputing the id with the row's dataset path."""
    from scalerec.scaling.spec import legacy_run_id
    from scalerec.scaling.sweep import _beside, prepare_world

    out, spec, rows = swept
    prepare_world(spec, out)
    plan = {r.run_id: r for r in plan_runs(spec, out)}
    elsewhere = "/elsewhere/sweep/world"

    def rewrite(r):
        run = plan[r["run_id"]]
        tokens = _beside(run.cfg.data.tokens, run.cfg.data.dataset, elsewhere)  # moved with the dataset
        return {**r, "run_id": legacy_run_id(run.cfg, elsewhere, tokens), "dataset": elsewhere}

    committed = _copy_table(swept, tmp_path / "committed", rewrite)
    calls = []
    again = run_sweep(_spec(holdout_sizes=["xs"], holdout_scale=1.2), tmp_path / "new", adopt=committed,
                      train_fn=lambda cfg, resume=False: calls.append(cfg))
    assert not calls and all(r.get("adopted_from") for r in again)
    assert [r["valid_loss"] for r in again] == [r["valid_loss"] for r in rows]


def test_runs_killed_mid_way_resume_to_the_uninterrupted_results(tmp_path, monkeypatch):
    """A held-out single run and a cooldown branch killed after a checkpoint (as a device call's time limit
    kills them) continue from their own state on the next sweep call, instead of starting over, and end
    with the results of the sweep that was never interrupted. A run dir is named by its config's hash, so
    the state found there is that run's."""
    import copy
    import shutil

    from scalerec.scaling import branches
    from scalerec.scaling import sweep as sweep_mod
    from scalerec.scaling.sweep import _default_train
    from scalerec.train import train

    spec = _spec(max_steps=20, decay_frac=0.5, holdout_sizes=["xs"], holdout_scale=1.2)
    whole = {r["role"]: r for r in run_sweep(spec, tmp_path / "whole")}
    out = tmp_path / "killed"
    run_sweep(spec, out)
    plans = {r.role: r for r in plan_runs(spec, out)}
    trunk, branch, held = plans["trunk"], plans["branch"], plans["single"]
    shutil.rmtree(out / "runs" / held.run_id)
    cut = copy.deepcopy(held.cfg)
    cut.train.stop_after_steps = 7
    assert not train(cut).completed  # killed at step 7 of 24, its state.pt left behind
    (out / "runs" / branch.run_id / "final.json").unlink()
    branches._start_branch(out / "runs" / trunk.run_id, branch)
    mid = copy.deepcopy(branch.cfg)
    mid.train.stop_after_steps = _branch_step(branch) + 2
    assert not train(mid, resume=True).completed  # killed mid-cooldown
    calls: list[tuple[str, bool]] = []
    starts: list[str] = []
    real_start = branches._start_branch
    monkeypatch.setattr(branches, "_start_branch", lambda d, r: starts.append(r.run_id) or real_start(d, r))

    def spy(cfg, resume=False):
        calls.append((cfg.run.name, resume))
        return _default_train(cfg, resume)

    seen: list[str] = []
    real_row = sweep_mod.result_row
    monkeypatch.setattr(sweep_mod, "result_row", lambda o, r: seen.append(r.run_id) or real_row(o, r))
    rows = {r["role"]: r for r in run_sweep(spec, out, train_fn=spy)}
    assert seen.count(trunk.run_id) == 1  # read once as finished, not again as one of the job's runs
    assert (held.run_id, True) in calls and (branch.run_id, True) in calls and not starts
    for role in ("single", "branch"):
        assert rows[role]["status"] == "ok"
        assert rows[role]["steps"] == whole[role]["steps"]
        assert rows[role]["valid_loss"] == pytest.approx(whole[role]["valid_loss"], abs=1e-6), role


def test_runs_killed_before_their_first_state_train_again_in_place(tmp_path):
    """A trunk and a held-out run killed before their first state.pt leave config.toml and metrics only. The
    next call trains them again in their own dirs: the trunk's first pause used to fail (trained in a
    staging copy, its snapshot was copied from the empty run dir: FileNotFoundError, seen on the CPU on
    2026-12-07), and a staging copy cut again restarted from scratch in every later call."""
    from scalerec.train.outputs import staging_dir

    spec = _spec(holdout_sizes=["xs"], holdout_scale=1.2)
    out = tmp_path / "sweep"
    prepare_world(spec, out)
    runs = plan_runs(spec, out)
    leftovers = [r for r in runs if r.role in ("trunk", "single")]
    for run in leftovers:
        d = out / "runs" / run.run_id
        d.mkdir(parents=True)
        (d / "config.toml").write_text("# left by a killed call\n")
        (d / "metrics.jsonl").write_text("")
        staging_dir(d).mkdir()
        (staging_dir(d) / "state.pt").write_text("an older staging copy")
    rows = run_sweep(spec, out)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    for run in leftovers:
        assert (out / "runs" / run.run_id / "final.json").is_file()
        assert not staging_dir(out / "runs" / run.run_id).exists()
