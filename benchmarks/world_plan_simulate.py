"""Benchmark: can a planned known-floor sweep identify E and alpha_N? A parametric bootstrap of its grid.

Builds the fitted runs of a plan (each fitted size × each nested D point × its seeds: what `scalerec
fit` sees once one LR per size is selected), simulates the sweep under an assumed true law
L = E + A_N/N^alpha_N + A_D/D^alpha_D with log-normal seed noise, and fits each simulated table as
`scalerec fit` does (`scalerec.scaling.simulate`). The law is set by the excess over E it predicts
for the smallest size (`--excess-n`, N term) and at the largest D (`--excess-d`, D term), which is
how a plan is judged against CPU probes. Prints one JSON line per noise level.

    python benchmarks/world_plan_simulate.py --floor 1.879 --sizes 28128,107456,411520,824704,1823296 \
        --d-max 25.6e6 --branches 0.0625,0.125,0.25,0.5 --seeded 0,3 --noise 0.005,0.01,0.02

`--holdout N:D` adds item 4's extrapolation test: held-out runs simulated under the same law, never
fitted, judged by `scalerec.scaling.extrapolate.extrapolation_test` (one more JSON line per noise level).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from scalerec.scaling.simulate import simulate, simulate_extrapolation


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def holdouts(text: str) -> list[tuple[float, float]]:
    """'14363520:422.4e6,...' -> [(N, D), ...]"""
    return [(float(a), float(b)) for a, b in (x.split(":") for x in text.split(",") if x)]


def plan(sizes: list[float], d_max: float, branches: list[float], seeded: list[int], seeds: int):
    """(N, D) of every fitted run: sizes × (branches + trunk end), `seeds` copies of the `seeded` sizes."""
    d_points = [d_max * f for f in branches] + [d_max]
    n, d = [], []
    for i, size in enumerate(sizes):
        for _ in range(seeds if i in seeded else 1):
            n += [size] * len(d_points)
            d += d_points
    return np.asarray(n), np.asarray(d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--floor", type=float, required=True, help="E: the world's Bayes floor (nats)")
    ap.add_argument("--sizes", type=floats, required=True, help="non-embedding N of the fitted sizes")
    ap.add_argument("--d-max", type=float, required=True, help="unique targets of a full trunk")
    ap.add_argument("--branches", type=floats, default=[0.0625, 0.125, 0.25, 0.5])
    ap.add_argument("--seeded", type=lambda t: [int(x) for x in t.split(",")], default=[0, 3])
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the seeded sizes")
    ap.add_argument("--alpha-n", type=float, default=0.4)
    ap.add_argument("--alpha-d", type=float, default=0.35)
    ap.add_argument("--excess-n", type=float, default=0.3, help="A_N/N^alpha_N of the smallest size")
    ap.add_argument("--excess-d", type=float, default=0.08, help="A_D/D^alpha_D at the largest D")
    ap.add_argument("--noise", type=floats, default=[0.005, 0.01, 0.02], help="log-space seed sd")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--boot", type=int, default=50)
    ap.add_argument(
        "--holdout",
        type=holdouts,
        default=[],
        help="held-out runs N:D[,N:D...] (item 4): also simulate the extrapolation test",
    )
    ap.add_argument("--skip-identification", action="store_true", help="only the extrapolation test")
    args = ap.parse_args()
    n, d = plan(args.sizes, args.d_max, args.branches, args.seeded, args.seeds)
    law = {
        "E": args.floor,
        "A_N": args.excess_n * min(args.sizes) ** args.alpha_n,
        "alpha_N": args.alpha_n,
        "A_D": args.excess_d * args.d_max**args.alpha_d,
        "alpha_D": args.alpha_d,
    }
    for noise in args.noise:
        if not args.skip_identification:
            t0 = time.perf_counter()
            out = simulate(n, d, law, noise, reps=args.reps, n_boot=args.boot)
            print(json.dumps({**out["summary"], "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
        if args.holdout:
            t0 = time.perf_counter()
            ext = simulate_extrapolation(n, d, law, noise, args.holdout, reps=args.reps, n_boot=args.boot)
            print(json.dumps({**ext["summary"], "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
