"""benchmarks/world_step_probe.py: a world sweep's own run config timed per compile mode (real trainer)."""

from __future__ import annotations

import json

from bench_scripts import load_script


def test_probe_trains_the_sweeps_run_in_each_mode_and_leaves_nothing(tmp_path, capsys):
    probe = load_script("benchmarks/world_step_probe.py")
    args = ["configs/sweeps/world_v2_smoke.toml", "--out", str(tmp_path), "--sizes", "tiny",
            "--modes", "eager", "--parallel", "1", "--steps", "12", "--warmup", "4", "--log-every", "4"]
    assert probe.main(args) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    row = rows[-1]
    assert row["size"] == "tiny" and row["mode"] == "eager" and row["ratio_to_eager"] == 1.0
    assert row["targets_per_s_card"] > 0 and len(row["last_train_loss"]) == 1
    cfg = probe.probe_config("configs/sweeps/world_v2_smoke.toml", tmp_path, "tiny", 12, 4)
    assert cfg.train.lr == 6e-3  # the centre of the LR search
    # paused after 12 steps on the trunk's own schedule, not a 12-step run whose decay starts at once
    spec = probe.load_spec("configs/sweeps/world_v2_smoke.toml")
    trunk = next(r.cfg for r in probe.plan_runs(spec, tmp_path) if r.size == "tiny" and r.role == "trunk")
    assert cfg.train.stop_after_steps == 12 and cfg.train.max_steps == trunk.train.max_steps > 12
    assert (cfg.train.schedule, cfg.train.warmup_steps, cfg.train.decay_steps) == (
        trunk.train.schedule, trunk.train.warmup_steps, trunk.train.decay_steps)
    assert not (tmp_path / "step_probe").exists()
