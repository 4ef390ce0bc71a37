"""Sweep machinery with an injected fake trainer: stable ids, resume, failures recorded, table rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scalerec.errors import UserError
from scalerec.memory import GPU_SHARE_ENV
from scalerec.scaling.spec import SweepSpec, load_spec, plan_runs
from scalerec.scaling.sweep import read_results, run_sweep

CALLS: list[str] = []


def fake_train(cfg):
    """Writes a final.json whose loss follows a known law; fails on the 'xs' model at seed 7."""
    from scalerec.model.flops import param_counts

    CALLS.append(cfg.run.name)
    if cfg.model_size == "xs" and cfg.run.seed == 7:
        raise RuntimeError("simulated divergence")
    rdir = Path(cfg.run.out) / cfg.run.name
    rdir.mkdir(parents=True, exist_ok=True)
    n = param_counts(cfg.model)["non_embedding"]
    d = json.loads((Path(cfg.data.dataset) / "card.json").read_text())["n_interactions"]
    loss = 2.0 + 50 * n**-0.3 + 80 * d**-0.3
    final = {
        "params": {"total": n + 1000, "non_embedding": n},
        "flops": {"per_target": 6.0 * n, "total": 6.0 * n * d},
        "targets_seen": d,
        "steps": 10,
        "epochs": 1.0,
        "wall_time_s": 0.5,
        "device": "cpu",
        "valid": {"loss": loss, "ndcg@10": 0.1},
        "test": {"ndcg@10": 0.09, "gpu_share": float(os.environ.get(GPU_SHARE_ENV, 0))},
    }
    (rdir / "final.json").write_text(json.dumps(final))


def _dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    for label, n in (("1K", 1000), ("4K", 4000)):
        sub = root / "subsets" / label
        sub.mkdir(parents=True)
        (sub / "card.json").write_text(json.dumps({"n_interactions": n, "n_users": 100, "n_items": 50}))
    return root


def _spec(tmp_path: Path, **kw) -> SweepSpec:
    base = dict(
        dataset=str(_dataset(tmp_path)),
        sizes=["tiny", "xs"],
        subsets=["1K", "4K"],
        seeds=[0],
        epochs=1.0,
        base={"model": {"item_encoder": "id"}},
    )
    return SweepSpec(**{**base, **kw})


def test_run_ids_are_stable_and_distinct(tmp_path):
    spec = _spec(tmp_path, lr_search=[0.5, 1.0])
    a = plan_runs(spec, tmp_path / "out")
    b = plan_runs(spec, tmp_path / "elsewhere")
    assert [r.run_id for r in a] == [r.run_id for r in b]
    assert len({r.run_id for r in a}) == len(a) == 8
    assert {r.lr for r in a if r.size == "tiny"} == {5e-4, 1e-3}


def test_sweep_runs_missing_records_failures_and_resumes(tmp_path):
    spec = _spec(tmp_path, seeds=[0, 7])
    out = tmp_path / "out"
    CALLS.clear()
    rows = run_sweep(spec, out, train_fn=fake_train)
    assert len(CALLS) == 8 and len(rows) == 8
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 2 and all("simulated divergence" in r["error"] for r in failed)
    assert all((out / "runs" / r["run_id"] / "error.json").is_file() for r in failed)
    table = read_results(out)
    assert len(table) == 8
    ok = [r for r in table if r["status"] == "ok"]
    assert all(r["valid_loss"] > 2.0 and r["flops"] > 0 and r["n_interactions"] in (1000, 4000) for r in ok)
    CALLS.clear()
    run_sweep(spec, out, train_fn=fake_train)
    assert len(CALLS) == 2  # only the failed runs are retried
    assert len(read_results(out)) == 8


@pytest.mark.slow
def test_parallel_workers_produce_the_same_table(tmp_path):
    spec = _spec(tmp_path)
    rows = run_sweep(spec, tmp_path / "out", parallel=2, train_fn=fake_train)
    assert sorted(r["status"] for r in rows) == ["ok"] * 4
    assert len(read_results(tmp_path / "out")) == 4
    # each worker knows it shares the GPU with one other; the sweep's own process is left as it was
    assert [r["test_gpu_share"] for r in rows] == [2.0] * 4 and GPU_SHARE_ENV not in os.environ


def test_dry_run_lists_flops_and_time_without_training(tmp_path):
    CALLS.clear()
    rows = run_sweep(_spec(tmp_path), tmp_path / "out", dry_run=True, train_fn=fake_train, calibrate=False)
    assert not CALLS and len(rows) == 4
    assert all(r["status"] == "missing" and r["est_flops"] > 0 and r["est_time_s"] > 0 for r in rows)
    big = [r for r in rows if r["subset"] == "4K" and r["size"] == "xs"][0]
    small = [r for r in rows if r["subset"] == "1K" and r["size"] == "xs"][0]
    assert big["est_flops"] > 3 * small["est_flops"]


def test_spec_errors_name_the_field(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('dataset = "ds"\nsizes = ["tiny", "huge"]\nepochs = 1\n')
    with pytest.raises(UserError, match="huge"):
        load_spec(path)
    path.write_text('dataset = "ds"\nsize = ["tiny"]\nepochs = 1\n')
    with pytest.raises(UserError, match="sizes"):
        load_spec(path)
    spec = _spec(tmp_path, subsets=["nope"])
    with pytest.raises(UserError, match="nope"):
        plan_runs(spec, tmp_path / "out")


@pytest.mark.parametrize("name", ["demo", "synthetic_gpu", "beauty_gpu"])
def test_shipped_sweep_configs_parse(name):
    spec = load_spec(Path(__file__).resolve().parents[2] / "configs" / "sweeps" / f"{name}.toml")
    assert "{subset}" in spec.tokens
    if name != "demo":
        assert len(spec.sizes) >= 5 and len(spec.subsets) >= 4 and spec.device == "cuda"


def crowd_sensitive_train(cfg):
    """Fails like the CUDA allocator when another run is training at the same time (a marker file per
    running run under the dataset's `running/`), else writes a final.json: a GPU too small for two."""
    import time

    running = Path(cfg.data.dataset).parent.parent / "running"
    running.mkdir(exist_ok=True)
    me = running / cfg.run.name
    me.touch()
    try:
        time.sleep(0.5)
        if any(p != me for p in running.iterdir()):
            raise RuntimeError("OutOfMemoryError: CUDA out of memory. Tried to allocate 400.00 MiB")
        fake_train(cfg)
    finally:
        me.unlink()


def test_a_run_out_of_memory_beside_others_is_retried_alone(tmp_path):
    """Two runs start together and both run out of memory; each gets one more try alone and finishes,
    so the sweep ends with every run done instead of two failures."""
    from scalerec.scaling.sweep import _run_pending, jobs_of

    spec = _spec(tmp_path, sizes=["tiny"])
    runs = plan_runs(spec, tmp_path / "out")
    done: list[tuple[str, str]] = []
    _run_pending(jobs_of(runs), 2, crowd_sensitive_train, lambda run, st, _: done.append((run.run_id, st)))
    assert sorted(s for _, s in done) == ["done", "done"] and len({r for r, _ in done}) == 2


def test_admission_fits_jobs_to_the_gpu_budget_and_runs_a_retry_alone():
    from scalerec.scaling.sweep import _Admission

    big, big2, small = [object()], [object()], [object()]
    need = {id(big): 60, id(big2): 60, id(small): 30}
    asked: list[int] = []
    admit = _Admission(100, lambda job: asked.append(id(job)) or need[id(job)])
    queue = [big, big2, small]
    assert admit.pick(queue) == 0  # nothing runs: the first job starts
    admit.start(queue.pop(0))
    assert admit.pick(queue) == 1  # big2 (60) does not fit beside big (60); small (30) does
    admit.start(queue.pop(1))
    assert admit.pick(queue) is None  # 90 in use: big2 waits
    oom = [("failed", "OutOfMemoryError: CUDA out of memory")]
    assert admit.finish(big, oom)  # ran out beside small: try again alone
    queue.insert(0, big)
    assert admit.pick(queue) is None  # small still runs: the retry waits, and nothing jumps ahead of it
    assert not admit.finish(small, [("done", None)])
    assert admit.pick(queue) == 0
    admit.start(queue.pop(0))
    assert admit.pick(queue) is None  # the retry runs alone
    assert not admit.finish(big, oom)  # out of memory alone: a real failure, no retry
    assert admit.pick(queue) == 0
    assert sorted(asked) == sorted(need)  # each job's planned memory is computed once


def test_job_gpu_bytes_is_the_trainers_bound_with_headroom(tmp_path):
    from scalerec.memory import training_bytes
    from scalerec.scaling.sweep import GPU_HEADROOM, job_gpu_bytes

    run = plan_runs(_spec(tmp_path, sizes=["xs"], subsets=["4K"]), tmp_path / "out")[0]
    t = run.cfg.train
    bound = training_bytes(run.cfg.model, t.batch_size // t.grad_accum, t.targets, t.loss, t.negatives,
                           t.shared_negatives, 50)
    assert job_gpu_bytes([run]) == int(sum(bound.values()) * GPU_HEADROOM)
