"""How fast a world sweep's runs train under each torch.compile mode, before the sweep spends hours on one.

world_v6 (`configs/sweeps/world_v6.toml`) is ~1.8 device-hours of batch-256 trunks trained eagerly
(`train.compile` is off by default). Its `m` ran at ~58 steps/s for one H100 (docs/results/world_v6),
about 5% of the card's bf16 matmul peak, so the step is bound by something other than FLOPs, and CUDA
graphs halved a launch-bound step elsewhere (BENCHMARKS.md, step overhead). This takes the sweep's own
run config for a size (its seed-0 trunk at the centre LR, the world the sweep writes), stops it after
`--steps` on the trunk's own LR schedule, and trains it with the real trainer in each mode, `--parallel`
copies side by side (the sweep runs 3-6), one mode after another. It prints one JSON line per (size, mode):
the card's aggregate targets/s over the log windows after `--warmup` steps (compilation and CUDA-graph
capture excluded), the ratio to eager measured in the same call, and the last logged training loss of each
copy (the mean over its last log window; same seed and stream in every mode). Eager copies agree to the last
digit on an H100; compiled copies of the same seed do not agree with each other (up to 0.08 nats apart at
step 500 on 2026-12-07), so compare a mode's mean, not its copies.

    python benchmarks/world_step_probe.py configs/sweeps/world_v6.toml --out runs/world_v6 \
        --sizes m,tiny --modes eager,default,reduce-overhead --parallel 3 --steps 800 --warmup 300
    python benchmarks/world_step_probe.py configs/sweeps/world_v2_smoke.toml --out /tmp/probe \
        --sizes tiny --modes eager --steps 40 --warmup 20 --log-every 10    # CPU check of the mechanics

The probe's runs live in `<out>/step_probe/` (not the sweep's runs dir) and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from scalerec.scaling.spec import load_spec, plan_runs  # noqa: E402
from scalerec.scaling.sweep import prepare_world  # noqa: E402
from scalerec.train import train  # noqa: E402  (a module function: spawn pickles it by name)
from scalerec.train.config import RunConfig  # noqa: E402


def probe_config(spec_path: str, out: Path, size: str, steps: int, log_every: int) -> RunConfig:
    """The sweep's seed-0 trunk of `size` at its centre LR, stopped after `steps` on the trunk's own schedule.

    The run is paused (`stop_after_steps`), not shortened: until 2026-12-07 the probe set
    `max_steps = steps`, and the trunk's wsd decay (3,000 steps for world_v6) then began before step 0, so
    after its 100 warmup steps the probe trained at 7% of the LR and less. Its speed was unaffected, but the
    losses the compile-mode rule compares came from a run the sweep never trains."""
    spec = load_spec(spec_path)
    prepare_world(spec, out)
    planned = plan_runs(spec, out)
    runs = [r for r in planned if r.size == size and r.seed == 0 and r.role in ("trunk", "single")]
    if not runs:
        raise SystemExit(f"{spec_path}: no seed-0 trunk of size {size!r}")
    run = runs[len(runs) // 2]  # the LR search's centre
    cfg = copy.deepcopy(run.cfg)
    cfg.train.log_every, cfg.train.stop_after_steps = log_every, steps
    cfg.train.save_state_s = None
    cfg.run.progress = False
    return cfg


def window_rates(metrics: Path, warmup: int) -> tuple[list[float], float]:
    """targets/s of each log window that starts after `warmup` steps, and the last training loss."""
    lines = [json.loads(x) for x in metrics.read_text().splitlines() if "train/loss" in x]
    rates = [x["train/targets_per_s"] for x in lines if x["step"] - lines[0]["step"] >= warmup]
    return rates, lines[-1]["train/loss"]


def run_mode(base: RunConfig, root: Path, size: str, mode: str, parallel: int, warmup: int) -> dict:
    cfgs = []
    for i in range(parallel):
        cfg = copy.deepcopy(base)
        cfg.train.compile = mode != "eager"
        if mode != "eager":
            cfg.train.compile_mode = mode
        cfg.run.out, cfg.run.name = str(root), f"{size}-{mode}-{i}"
        cfgs.append(cfg)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=train, args=(c,)) for c in cfgs]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    wall = time.perf_counter() - t0
    if any(p.exitcode for p in procs):
        return {"size": size, "mode": mode, "error": f"exit codes {[p.exitcode for p in procs]}"}
    per_copy = [window_rates(root / c.run.name / "metrics.jsonl", warmup) for c in cfgs]
    rates = [statistics.median(r) for r, _ in per_copy if r]
    return {
        "size": size,
        "mode": mode,
        "parallel": parallel,
        "targets_per_s_card": round(sum(rates)),
        "targets_per_s_each": [round(r) for r in rates],
        "steps_per_s_card": round(sum(rates) / (base.train.batch_size * (base.data.max_len or 1)), 2),
        "last_train_loss": [round(loss, 4) for _, loss in per_copy],
        "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--out", required=True, help="the sweep's out dir (its world is reused or written there)")
    ap.add_argument("--sizes", default="m")
    ap.add_argument("--modes", default="eager,default,reduce-overhead")
    ap.add_argument("--parallel", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--log-every", type=int, default=100)
    args = ap.parse_args(argv)
    out = Path(args.out)
    root = out / "step_probe"
    if root.exists():
        raise SystemExit(f"{root} exists: remove it (a probe left it) or pick another --out")
    print(json.dumps({"spec": args.spec, "argv": sys.argv[1:]}), flush=True)
    try:
        for size in args.sizes.split(","):
            base = probe_config(args.spec, out, size, args.steps, args.log_every)
            eager = None
            for mode in args.modes.split(","):
                row = run_mode(base, root, size, mode, args.parallel, args.warmup)
                if mode == "eager":
                    eager = row.get("targets_per_s_card")
                if eager and row.get("targets_per_s_card"):
                    row["ratio_to_eager"] = round(row["targets_per_s_card"] / eager, 3)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
