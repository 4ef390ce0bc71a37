"""Which jobs of a sweep finish in each GPU call: a wave-packing plan from measured step times.

Why it exists: world_v4's calibrated `--dry-run` timed each size alone and promised 12.3 min for the
whole grid. Under `--parallel 12` every worker ran about 6x slower than alone: a step cost about
65 ms whatever the size (Python and launch overhead of 12 processes on 16 cores), more for sizes
whose GPU work no longer hides under it. Only the first wave of 12 jobs (about 300 s each) finished
in the 540-s call. The rest were cut and lost, since a call packs whole jobs only.

This plans in optimizer steps instead of FLOP/s. The step time of a worker is
`max(overhead, base + flops_per_step * s_per_flop)`. The defaults are fitted to world_v4 call 1
(H200, 12 workers, `docs/results/world_v4/README.md`):
- tiny, xs, s2: 64-65 ms per step;
- s: 72 ms at 1.3e11 FLOP/step;
- s+: 96 ms at 2.2e11.

Jobs (a trunk with its branches' cooldowns, or a single run) go to free workers in the sweep's own
order (`scaling.sweep.jobs_of` of `plan_runs`), call after call. A job that cannot finish before the
call's end is lost; the next call runs it again from the start.

    python benchmarks/world_call_plan.py configs/sweeps/world_v5.toml [--workers 12] [--set k=v]
"""

from __future__ import annotations

import argparse
import heapq
import json
import tempfile


def job_table(spec_path: str, overrides: list[str] | None = None) -> list[dict]:
    """One row per job of the spec: label, steps it trains, FLOPs per step, FLOPs."""
    from scalerec.scaling.estimate import estimate_run
    from scalerec.scaling.spec import load_spec, plan_runs
    from scalerec.scaling.sweep import jobs_of, prepare_world

    spec = load_spec(spec_path, overrides=overrides or None)
    with tempfile.TemporaryDirectory() as out:
        prepare_world(spec, out)  # a [world] spec: writes the world the run ids depend on
        jobs = jobs_of(plan_runs(spec, out))
        rows = []
        for job in jobs:
            ests = [estimate_run(r) for r in job]
            steps = sum(e["_new_steps"] for e in ests)
            flops = sum(e["est_new_flops"] for e in ests)
            head = job[0]
            label = f"{head.size} lr={head.lr:.3g} seed={head.seed}{' holdout' if head.holdout else ''}"
            rows.append({"job": label,
                         "steps": steps, "flops_per_step": flops / max(1, steps), "flops": flops})
    return rows


def step_s(flops_per_step: float, overhead: float, base: float, s_per_flop: float) -> float:
    return max(overhead, base + flops_per_step * s_per_flop)


def pack(rows: list[dict], workers: int, usable_s: float, max_calls: int, **model: float) -> list[dict]:
    """Simulate the calls: FIFO onto `workers`; what finishes within `usable_s` of each call."""
    queue = [dict(r, seconds=r["steps"] * step_s(r["flops_per_step"], **model)) for r in rows]
    calls = []
    while queue and len(calls) < max_calls:
        free = [0.0] * workers
        heapq.heapify(free)
        done, lost = [], []
        for job in queue:
            start = heapq.heappop(free)
            end = start + job["seconds"]
            if start >= usable_s:
                heapq.heappush(free, start)
                lost.append(job)
                continue
            heapq.heappush(free, end)
            (done if end <= usable_s else lost).append(job)
        calls.append({"finished": [j["job"] for j in done], "not_finished": [j["job"] for j in lost],
                      "busy_s": round(max(free), 1)})
        queue = lost
    return calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--call-s", type=float, default=540.0, help="the call's sweep timeout")
    ap.add_argument("--startup-s", type=float, default=30.0, help="imports, world write, first CUDA init")
    ap.add_argument("--overhead-ms", type=float, default=65.0)
    ap.add_argument("--base-ms", type=float, default=37.0)
    ap.add_argument("--s-per-flop", type=float, default=2.7e-13)
    ap.add_argument("--max-calls", type=int, default=4)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="spec override key=value")
    a = ap.parse_args()
    model = {"overhead": a.overhead_ms / 1e3, "base": a.base_ms / 1e3, "s_per_flop": a.s_per_flop}
    rows = job_table(a.spec, a.overrides)
    for r in rows:
        r["seconds"] = round(r["steps"] * step_s(r["flops_per_step"], **model), 1)
        print(json.dumps({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in r.items()}))
    calls = pack(rows, a.workers, a.call_s - a.startup_s, a.max_calls, **model)
    for i, c in enumerate(calls, 1):
        print(json.dumps({"call": i, "finished": len(c["finished"]), "not_finished": len(c["not_finished"]),
                          "busy_s": c["busy_s"], "jobs_finished": c["finished"]}))
    left = calls[-1]["not_finished"] if calls else []
    print(json.dumps({"jobs": len(rows), "calls_needed": len(calls) if not left else None,
                      "left_after_max_calls": left, "total_flops": f"{sum(r['flops'] for r in rows):.3g}"}))


if __name__ == "__main__":
    main()
