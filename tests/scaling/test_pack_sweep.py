"""benchmarks/device/pack_sweep.py: the tarball a device call returns, and the sweep dir it leaves behind."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

from bench_scripts import load_script
from scalerec.scaling.spec import load_spec, plan_runs
from scalerec.scaling.sweep import jobs_of


def _sweep(tmp_path: Path) -> tuple[Path, Path, list]:
    sub = tmp_path / "ds" / "subsets" / "1K"
    sub.mkdir(parents=True)
    (sub / "card.json").write_text(json.dumps({"n_interactions": 1000, "n_users": 100, "n_items": 50}))
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'dataset = "{tmp_path / "ds"}"\nsizes = ["tiny"]\nsubsets = ["1K"]\nseeds = [0, 1]\n'
        'max_steps = 40\nbranches = [0.5]\n\n[base.model]\nitem_encoder = "id"\n'
    )
    out = tmp_path / "sweep"
    jobs = jobs_of(plan_runs(load_spec(spec), out))
    return spec, out, jobs


def test_the_tarball_keeps_complete_jobs_light_and_the_sweep_dir_keeps_every_state(tmp_path):
    """A job the call's timeout cut (seed 1: its trunk has only a state.pt) stays out of the tarball but
    stays on the machine, so the next call chained there resumes it; before 2026-12-07 packing deleted it
    there, and a job longer than one call could never finish."""
    spec, out, jobs = _sweep(tmp_path)
    (done_trunk, done_branch), (cut_trunk, cut_branch) = jobs
    files = [
        (done_trunk, ["final.json", "state.pt", "model.safetensors", "metrics.jsonl"]),
        (done_branch, ["final.json", "branch.pt"]),
        (cut_trunk, ["state.pt", "metrics.jsonl"]),
    ]
    for run, names in files:
        d = out / "runs" / run.run_id
        d.mkdir(parents=True)
        for name in names:
            (d / name).write_text("x")
    pack = load_script("benchmarks/device/pack_sweep.py")
    tgz = tmp_path / "sweep.tgz"
    assert pack.main([str(spec), str(out), str(tgz)]) == 0
    with tarfile.open(tgz) as tf:
        packed = {n for n in tf.getnames() if tf.getmember(n).isfile()}
    assert packed == {
        f"sweep/runs/{done_trunk.run_id}/final.json",
        f"sweep/runs/{done_trunk.run_id}/metrics.jsonl",
        f"sweep/runs/{done_branch.run_id}/final.json",
    }
    for run, names in files:  # nothing deleted on the machine
        assert all((out / "runs" / run.run_id / n).is_file() for n in names)
    assert not (out / "runs" / cut_branch.run_id).exists()
    assert pack.main([str(spec), str(out), str(tgz), "--keep-weights"]) == 0
    with tarfile.open(tgz) as tf:
        assert f"sweep/runs/{done_trunk.run_id}/model.safetensors" in tf.getnames()


def test_carry_cut_lets_small_cut_jobs_ride_whole_within_the_budget(tmp_path):
    """--carry-cut MB: a cut job rides back with its state and snapshots, so a fresh machine resumes it; a
    job over what is left of the budget stays out, as before."""
    spec, out, jobs = _sweep(tmp_path)
    (trunk0, _), (trunk1, _) = jobs
    for run, size in ((trunk0, 1_000), (trunk1, 300_000)):  # both cut: a state.pt and a snapshot
        d = out / "runs" / run.run_id
        d.mkdir(parents=True)
        (d / "state.pt").write_bytes(b"x" * size)
        (d / "branch-20.pt").write_bytes(b"x" * size)
    pack = load_script("benchmarks/device/pack_sweep.py")
    tgz = tmp_path / "sweep.tgz"

    def packed(*extra: str) -> set[str]:
        assert pack.main([str(spec), str(out), str(tgz), *extra]) == 0
        with tarfile.open(tgz) as tf:
            return {n for n in tf.getnames() if tf.getmember(n).isfile()}

    assert packed() == set()  # off by default: cut jobs stay on the machine only
    small = {f"sweep/runs/{trunk0.run_id}/state.pt", f"sweep/runs/{trunk0.run_id}/branch-20.pt"}
    big = {f"sweep/runs/{trunk1.run_id}/state.pt", f"sweep/runs/{trunk1.run_id}/branch-20.pt"}
    state0 = out / "runs" / trunk0.run_id / "state.pt"
    state0.rename(state0.with_suffix(".bak"))  # no state.pt: nothing to resume, so it does not ride
    assert packed("--carry-cut", "1") == big
    state0.with_suffix(".bak").rename(state0)
    assert packed("--carry-cut", "0.1") == small  # 2 KB fits, 600 KB does not
    assert packed("--carry-cut", "1") == small | big


def test_cut_jobs_that_would_push_the_tarball_past_what_a_call_returns_stay_out(tmp_path, monkeypatch):
    """A device call drops a file over 16 MiB whole, finished runs and all: cut jobs ride only while the
    tarball stays under MAX_TGZ_BYTES; otherwise it is packed again without them."""
    spec, out, jobs = _sweep(tmp_path)
    (trunk0, _), _ = jobs
    d = out / "runs" / trunk0.run_id
    d.mkdir(parents=True)
    (d / "state.pt").write_bytes(os.urandom(50_000))  # incompressible, like float weights
    pack = load_script("benchmarks/device/pack_sweep.py")
    monkeypatch.setattr(pack, "MAX_TGZ_BYTES", 20_000)
    tgz = tmp_path / "sweep.tgz"
    assert pack.main([str(spec), str(out), str(tgz), "--carry-cut", "1"]) == 0
    with tarfile.open(tgz) as tf:
        assert not any(trunk0.run_id in n for n in tf.getnames())


def test_run_dirs_outside_the_plan_stay_out_of_the_tarball_and_on_the_machine(tmp_path, capsys):
    """A cut job trained under overrides the sweep then dropped (world_v6, 2026-12-07: an eager trunk carried
    back before a compile mode was chosen; the mode is in every run id) would ride in every later tarball,
    11 MB of the 15 MiB a call returns, though nothing in the plan resumes it."""
    spec, out, jobs = _sweep(tmp_path)
    (done_trunk, done_branch), _ = jobs
    for run in (done_trunk, done_branch):
        d = out / "runs" / run.run_id
        d.mkdir(parents=True)
        (d / "final.json").write_text("x")
    stray = out / "runs" / "0123456789ab"
    stray.mkdir()
    (out / "runs" / "mlruns").mkdir()  # the runs' shared MLflow store: not a run, and never carried
    (stray / "state.pt").write_text("x")
    pack = load_script("benchmarks/device/pack_sweep.py")
    tgz = tmp_path / "sweep.tgz"
    assert pack.main([str(spec), str(out), str(tgz), "--carry-cut", "12"]) == 0
    with tarfile.open(tgz) as tf:
        names = tf.getnames()
    assert f"sweep/runs/{done_trunk.run_id}/final.json" in names
    assert not any("0123456789ab" in n for n in names)
    assert (stray / "state.pt").is_file()
    assert "1 run dirs outside this plan left out" in capsys.readouterr().out
