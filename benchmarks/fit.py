"""Benchmark: joint L(N, D) fit with the screened grid (best starts only) vs L-BFGS from every start.

Hoffmann et al. 2022 run L-BFGS from every point of a grid of starts; `scaling.laws` ranks the
grid by its initial objective and optimises only the best `N_OPTIMISED` starts. This prints, as
JSON lines, the time of both on the same noisy synthetic sweep, the ratio, and how far apart
their optima are (they should agree), so the shortcut is checked where it is measured.

    python benchmarks/fit.py [--sizes 6] [--data 5] [--noise 0.005] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from scalerec.scaling import laws


def _points(n_sizes: int, n_data: int, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    n, d = np.meshgrid(np.geomspace(1e4, 1e7, n_sizes), np.geomspace(1e5, 1e8, n_data))
    n, d = n.ravel(), d.ravel()
    y = (1.5 + 400 * n**-0.34 + 410 * d**-0.28) * np.exp(rng.normal(0, noise, n.size))
    return n, d, y


def _time(fn, repeats: int) -> tuple[float, laws.LawFit]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, default=6)
    ap.add_argument("--data", type=int, default=5)
    ap.add_argument("--noise", type=float, default=0.005)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n, d, y = _points(args.sizes, args.data, args.noise)
    n_starts = len(laws._starts(np.log(np.vstack([n, d])), np.log(y)))
    t_screen, f_screen = _time(lambda: laws.fit_joint(n, d, y), args.repeats)
    saved = laws.N_OPTIMISED
    laws.N_OPTIMISED = 10**9  # baseline: every start optimised
    try:
        t_all, f_all = _time(lambda: laws.fit_joint(n, d, y), args.repeats)
    finally:
        laws.N_OPTIMISED = saved
    diff = max(abs(f_screen.coef[k] / f_all.coef[k] - 1) for k in f_all.coef)
    print(json.dumps({"name": "joint_fit_all_starts", "points": int(y.size), "starts": n_starts, "s": t_all}))
    print(
        json.dumps(
            {
                "name": "joint_fit_screened",
                "points": int(y.size),
                "starts": saved,
                "s": t_screen,
                "loss": f_screen.loss,
                "baseline_loss": f_all.loss,
                "max_rel_coef_diff": diff,
            }
        )
    )
    print(json.dumps({"name": "speedup_screened_vs_all", "ratio": t_all / t_screen}))


if __name__ == "__main__":
    main()
