"""The plan builder of benchmarks/world_plan_simulate.py lists exactly the runs `scalerec fit` sees,
and the committed world_v4 spec parses with the world and recipe its plan README describes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tomllib

from bench_scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    return load_script("benchmarks/world_plan_simulate.py")


def test_plan_repeats_seeded_sizes_over_every_d_point():
    n, d = _bench().plan([10.0, 20.0, 30.0], 800.0, [0.25, 0.5], seeded=[1], seeds=3)
    # 3 D points (two branches + trunk end); size 20 three times, the others once
    assert list(np.unique(d)) == [200.0, 400.0, 800.0]
    assert (n == 20.0).sum() == 9 and (n == 10.0).sum() == 3 and (n == 30.0).sum() == 3
    assert n.shape == d.shape == (15,)


def test_world_v4_spec_trains_on_the_exact_loss_the_floor_is_defined_for():
    spec = tomllib.loads((ROOT / "configs/sweeps/world_v4.toml").read_text(encoding="utf-8"))
    assert spec["base"]["train"]["loss"] == "full"
    assert spec["world"]["n_topics"] * spec["world"]["variants"] <= 100_000  # full softmax affordable
    assert set(spec["extra_seed_sizes"]) == set(spec["sizes"])

    from scalerec.data.ingest.world import World, WorldConfig

    world = {k: v for k, v in spec["world"].items() if k != "eval_users"}
    floor = World.build(WorldConfig(**world)).bayes_floor()
    assert abs(floor - 1.8790) < 1e-3
