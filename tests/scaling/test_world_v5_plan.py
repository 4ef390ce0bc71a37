"""world_v5's plan: the committed spec uses the fixed world (validation and test targets alike) and
puts its held-out size past issue 18's bars; the call planner packs whole jobs into calls the way
world_v4's call 1 ran (a job cut by the call's end is lost and runs again in the next call)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from bench_scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def _planner():
    return load_script("benchmarks/world_call_plan.py")


def test_pack_keeps_only_whole_jobs_per_call():
    rows = [{"job": f"j{i}", "steps": 3000, "flops_per_step": 0.0, "flops": 0.0} for i in range(5)]
    model = {"overhead": 0.1, "base": 0.0, "s_per_flop": 0.0}  # 300 s per job
    calls = _planner().pack(rows, workers=2, usable_s=510.0, max_calls=5, **model)
    # two workers: one wave of 2 per call (a second job would end at 600 s > 510 s and be lost)
    assert [len(c["finished"]) for c in calls] == [2, 2, 1]
    assert calls[0]["finished"] == ["j0", "j1"] and calls[2]["finished"] == ["j4"]


def test_pack_fills_a_call_with_short_jobs_after_long_ones():
    rows = [{"job": "long", "steps": 4000, "flops_per_step": 0.0, "flops": 0.0}] + [
        {"job": f"short{i}", "steps": 2000, "flops_per_step": 0.0, "flops": 0.0} for i in range(3)
    ]
    calls = _planner().pack(rows, workers=2, usable_s=500.0, max_calls=3,
                            overhead=0.1, base=0.0, s_per_flop=0.0)
    assert calls[0]["finished"] == ["long", "short0", "short1"]  # 400 s; 200 + 200 s on the other worker
    assert calls[1]["finished"] == ["short2"]


def test_step_time_is_overhead_bound_until_the_gpu_work_shows():
    plan = _planner()
    model = {"overhead": 0.065, "base": 0.037, "s_per_flop": 2.7e-13}  # world_v4 call 1 fit
    assert plan.step_s(2.6e10, **model) == pytest.approx(0.065)  # tiny at batch 128
    assert plan.step_s(2.2e11, **model) == pytest.approx(0.0964, abs=1e-3)  # s+: 96 ms measured


def test_world_v5_spec_uses_the_fixed_world_and_holds_out_past_the_bars():
    spec = tomllib.loads((ROOT / "configs/sweeps/world_v5.toml").read_text(encoding="utf-8"))
    w = spec["world"]
    assert (w["context"], w["session"], w["rule_variant"]) == ("variant", 0, True)
    assert spec["base"]["train"]["loss"] == "full"
    from scalerec.data.ingest.world import World, WorldConfig

    world = World.build(WorldConfig(**{k: v for k, v in w.items() if k != "eval_users"}))
    assert world.bayes_floor() == pytest.approx(2.4849, abs=1e-4)
    assert world.train_floor() == pytest.approx(world.bayes_floor())  # every target a rule target
    assert set(spec["holdout_sizes"]).isdisjoint(spec["sizes"]) and spec["holdout_scale"] >= 2.5
    assert len(spec["lr_search"]) >= 3 and len(spec["extra_seed_sizes"]) >= len(spec["sizes"]) - 1
