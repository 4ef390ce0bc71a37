"""`--dry-run` time from a calibration measured once per device + size + config and cached."""

from __future__ import annotations

import json

import pytest

from scalerec.scaling import calibrate
from scalerec.scaling.spec import SweepSpec
from scalerec.scaling.sweep import run_sweep


def _spec(tmp_path, **kw) -> SweepSpec:
    root = tmp_path / "ds"
    for label, n in (("1K", 1000), ("4K", 4000)):
        sub = root / "subsets" / label
        sub.mkdir(parents=True, exist_ok=True)
        (sub / "card.json").write_text(json.dumps({"n_interactions": n, "n_users": 100, "n_items": 50}))
    values = dict(
        dataset=str(root),
        sizes=["tiny", "xs"],
        subsets=["1K", "4K"],
        seeds=[0],
        epochs=1.0,
        base={"model": {"item_encoder": "id"}},
    )
    return SweepSpec(**{**values, **kw})


@pytest.fixture
def fake_measure(monkeypatch, tmp_path):
    calls = []

    def measure(cfg, k=calibrate.CALIBRATION_STEPS):
        calls.append(cfg.model_size)
        return {"step_s": 0.5, "eval_s": 2.0, "fixed_s": 10.0, "k": k}

    monkeypatch.setenv("SCALEREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(calibrate, "measure", measure)
    return calls


def test_dry_run_times_runs_from_the_calibration_and_caches_it(tmp_path, fake_measure):
    spec = _spec(tmp_path, seeds=[0, 1], max_steps=40)
    rows = run_sweep(spec, tmp_path / "out", dry_run=True)
    assert sorted(fake_measure) == ["tiny", "xs"]  # one calibration per size, not per run
    assert all(r["time_source"] == "calibrated" for r in rows)
    # fixed + steps x step + extra validations (every epoch: the card has 1K/4K interactions)
    assert all(r["est_time_s"] >= 10.0 + 40 * 0.5 for r in rows)
    cache = json.loads(calibrate.cache_path().read_text())
    assert len(cache) == 2 and {v["size"] for v in cache.values()} == {"tiny", "xs"}
    run_sweep(spec, tmp_path / "out", dry_run=True)
    assert len(fake_measure) == 2  # cached: nothing measured again
    spec_lr = _spec(tmp_path, seeds=[0, 1], max_steps=80, lr=0.01)
    run_sweep(spec_lr, tmp_path / "out", dry_run=True)
    assert len(fake_measure) == 2  # run length and LR do not change the cost per step


def test_a_new_config_or_no_calibration_falls_back(tmp_path, fake_measure):
    spec = _spec(tmp_path, max_steps=40)
    rows = run_sweep(spec, tmp_path / "out", dry_run=True, calibrate=False)
    assert all(r["time_source"] == "flops_rate" for r in rows) and not fake_measure
    other = _spec(tmp_path, max_steps=40, base={"model": {"item_encoder": "id"}, "train": {"batch_size": 7}})
    run_sweep(spec, tmp_path / "out", dry_run=True)
    run_sweep(other, tmp_path / "out", dry_run=True)
    assert len(fake_measure) == 4  # batch size changes the step: calibrated again


def test_branch_pays_only_for_its_cooldown(tmp_path, fake_measure):
    from scalerec.scaling.estimate import estimate_run
    from scalerec.scaling.spec import plan_runs

    spec = _spec(tmp_path, max_steps=100, epochs=None, branches=[0.5], subsets=["1K"], sizes=["tiny"])
    trunk, branch = plan_runs(spec, tmp_path / "out")
    est = estimate_run(branch)
    assert est["est_steps"] == 50 and est["_new_steps"] == 10
    assert est["est_new_flops"] == pytest.approx(est["est_flops"] / 5)
    assert estimate_run(trunk)["_new_steps"] == 100


def test_eta_rescales_by_how_long_finished_runs_really_took(tmp_path, fake_measure, monkeypatch):
    from scalerec.scaling import sweep as sw
    from scalerec.scaling.spec import plan_runs

    spec = _spec(tmp_path, max_steps=40, sizes=["tiny"], subsets=["1K"], seeds=[0, 1])
    run_sweep(spec, tmp_path / "out", dry_run=True)  # calibrates (fake measure)
    runs = plan_runs(spec, tmp_path / "out")
    clock = iter([0.0, 15.0])
    monkeypatch.setattr(sw.time, "monotonic", lambda: next(clock))
    eta = sw._Eta(spec, runs, tmp_path / "out", {r.run_id for r in runs})
    # per run: fixed 10 s + 40 steps x 0.5 s + 39 more validations x 2 s (an epoch is one step here)
    assert sum(eta.left.values()) == pytest.approx(2 * (10 + 40 * 0.5 + 39 * 2.0))
    eta.done(runs[0].run_id)
    # the first run took 15 s of its estimated ~30 s: the rest is expected at the same pace
    assert (
        eta.describe(0)
        == f"0 failed, ETA {sw._fmt_s(eta.left[runs[1].run_id] * 15 / eta.est[runs[0].run_id])}"
    )
    assert sw._fmt_s(3725) == "1h02m" and sw._fmt_s(75) == "1m15s"


def test_a_gpu_sweep_is_planned_by_flops_on_a_machine_without_the_gpu(tmp_path, monkeypatch):
    import torch

    from scalerec.errors import UserError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("SCALEREC_CACHE", str(tmp_path / "cache"))
    spec = _spec(tmp_path, max_steps=40, device="cuda")
    rows = run_sweep(spec, tmp_path / "out", dry_run=True, calibrate=False)
    assert rows and all(r["time_source"] == "flops_rate" for r in rows)
    with pytest.raises(UserError, match="not available here"):
        run_sweep(spec, tmp_path / "out", dry_run=True)
