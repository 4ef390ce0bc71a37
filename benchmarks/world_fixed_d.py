"""Size effect at one fixed D on a known-floor world: excess loss over the Bayes floor against N.

Why: the joint law E + A·N^-a + B·D^-b did not identify alpha_N on world_v5 (its fitted grid ends where
every size from xs up sits within one seed sd). Longer trunks of tiny ... s at the held-out s+'s D
(96M streamed targets) show whether size pays once D is large. With the floor known, log(L - E) against
log(N) is a line whose slope is alpha_N at that D (the D term folds into the intercept). This is a
diagnostic with E given, not the fit `scalerec fit` makes (E free), and most sizes have one seed.

It also answers the extrapolation question at that D: the line fitted without the largest size predicts
it, beside two baselines (the nearest fitted size, and the mean of the fitted sizes).

    python benchmarks/world_fixed_d.py runs/world_v5/results.parquet runs/world_v5_long/results.parquet \
        --targets 96000000
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict


def _rows(paths: list[str], targets: int) -> list[dict]:
    """Runs at this D: each cell's validation-selected LR only (held-out runs have no LR search)."""
    import pyarrow.parquet as pq

    rows = []
    for p in paths:
        rows += [r for r in pq.read_table(p).to_pylist()
                 if r["status"] == "ok" and r["targets_seen"] == targets
                 and (r["holdout"] or r["lr_selected"] is not False)]
    return rows


def _line(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """Least-squares slope, intercept and the slope's 95% half-width (t with n - 2 dof)."""
    from scipy import stats

    r = stats.linregress(x, y)
    half = stats.t.ppf(0.975, len(x) - 2) * r.stderr if len(x) > 2 else math.inf
    return r.slope, r.intercept, half


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="results.parquet files of sweeps on the same world")
    ap.add_argument("--targets", type=int, default=96_000_000, help="the D (streamed targets) to compare at")
    ap.add_argument("--metric", default="valid_loss")
    a = ap.parse_args()
    rows = _rows(a.results, a.targets)
    if len(rows) < 3:
        raise SystemExit(f"need >= 3 runs at D = {a.targets:,}, found {len(rows)}")
    floors = {r["bayes_floor"] for r in rows}
    if len(floors) != 1:
        raise SystemExit(f"runs come from different worlds (floors {sorted(floors)})")
    floor = floors.pop()
    by_n: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_n[r["n_params_non_embedding"]].append(r)

    print(f"D = {a.targets / 1e6:.1f}M streamed targets; Bayes floor {floor:.4f}; metric {a.metric}\n")
    print("| size | N (non-emb.) | runs (seed: lr) | mean | excess over floor | held out |")
    print("|---|---|---|---|---|---|")
    for n in sorted(by_n):
        rs = by_n[n]
        mean = sum(r[a.metric] for r in rs) / len(rs)
        seeds = ", ".join(f"{r['seed']}: {r['lr']:.3g}" for r in rs)
        print(f"| {rs[0]['size']} | {n:,} | {seeds} | {mean:.4f} | {mean - floor:+.4f} "
              f"| {'yes' if any(r['holdout'] for r in rs) else 'no'} |")

    x = [math.log(r["n_params_non_embedding"]) for r in rows]
    y = [math.log(r[a.metric] - floor) for r in rows]
    slope, _, half = _line(x, y)
    print(f"\nalpha_N at this D (E fixed at the floor, every run a point): {-slope:.3f} "
          f"[{-slope - half:.3f}, {-slope + half:.3f}] (95% t-interval, {len(rows)} runs)")

    top = max(by_n)
    fit = [(xi, yi) for xi, yi, r in zip(x, y, rows, strict=True) if r["n_params_non_embedding"] != top]
    slope, icpt, half = _line([p[0] for p in fit], [p[1] for p in fit])
    actual = sum(r[a.metric] for r in by_n[top]) / len(by_n[top])
    pred = floor + math.exp(icpt + slope * math.log(top))
    fitted_ns = sorted(n for n in by_n if n != top)
    nearest = sum(r[a.metric] for r in by_n[fitted_ns[-1]]) / len(by_n[fitted_ns[-1]])
    mean_fitted = sum(r[a.metric] for n in fitted_ns for r in by_n[n]) / sum(len(by_n[n]) for n in fitted_ns)
    print(f"\nwithout {by_n[top][0]['size']} (N = {top:,}, {top / fitted_ns[-1]:.1f}x the largest fitted N): "
          f"alpha_N {-slope:.3f} +- {half:.3f}")
    print("| predictor of the largest size | predicted | actual | relative error |")
    print("|---|---|---|---|")
    for name, v in [("power law in N, E fixed at the floor", pred), ("nearest fitted size", nearest),
                    ("mean of the fitted sizes", mean_fitted)]:
        print(f"| {name} | {v:.4f} | {actual:.4f} | {(v - actual) / actual:+.2%} |")


if __name__ == "__main__":
    main()
