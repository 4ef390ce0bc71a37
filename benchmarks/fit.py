"""Benchmark and method checks of the scaling-law fitter (CPU only, numpy; no GPU needed).

    # Will a planned sweep identify the exponents? (parametric bootstrap of the planned grid)
    python benchmarks/fit.py simulate --spec configs/sweeps/X.toml \\
        --law E=4.5,A_N=60,alpha_N=0.3,A_D=300,alpha_D=0.3 \\
        --noise 0.005            # or --noise-from DIR: seed-to-seed spread of an earlier sweep
    python benchmarks/fit.py simulate --n 3e4,1e5,8e5,6e6 --d 1e6,3e6,1e7 --seeds 3 --law ... --noise 0.005
    # Does refitting a committed sweep reproduce its fits.json? (exit 1 if not)
    python benchmarks/fit.py refit docs/results/scaling_synthetic docs/results/scaling_beauty
    # How long does one joint fit + bootstrap + profile take?
    python benchmarks/fit.py timing [--sizes 6] [--data 5] [--n-boot 100]

Each prints JSON lines; `simulate` writes the full result with `--out`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scalerec.scaling import identify, laws, simulate


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _law(text: str) -> dict[str, float]:
    law = {k.strip(): float(v) for k, v in (kv.split("=") for kv in text.split(","))}
    missing = {"E", "A_N", "alpha_N", "A_D", "alpha_D"} - set(law)
    if missing:
        raise SystemExit(f"--law misses {sorted(missing)}")
    return law


def _plan(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) per planned run, seeds repeated: from a spec's dry run or a factorial grid."""
    if args.spec:
        from scalerec.scaling.spec import load_spec
        from scalerec.scaling.sweep import run_sweep

        with tempfile.TemporaryDirectory() as tmp:
            rows = run_sweep(load_spec(args.spec, args.set), tmp, dry_run=True)
        n = np.asarray([r["n_params_non_embedding"] for r in rows], dtype=float)
        d = np.asarray([r.get("est_targets", np.nan) for r in rows], dtype=float)
        if not np.isfinite(d).all():
            raise SystemExit("the dry run has no target count for some runs (dataset card missing?)")
        return n, d
    n, d = np.meshgrid(_floats(args.n), _floats(args.d))
    return np.tile(n.ravel(), args.seeds), np.tile(d.ravel(), args.seeds)


def cmd_simulate(args: argparse.Namespace) -> None:
    noise = args.noise
    if args.noise_from:
        from scalerec.scaling.sweep import read_results

        noise = simulate.seed_noise(read_results(args.noise_from), args.metric)
        if noise is None:
            raise SystemExit(f"{args.noise_from}: no cell with two finished seeds to measure noise")
    n, d = _plan(args)
    t = time.perf_counter()
    res = simulate.simulate(n, d, _law(args.law), noise, reps=args.reps, n_boot=args.n_boot, seed=args.seed)
    print(json.dumps({"name": "simulate", **res["summary"], "s": time.perf_counter() - t}))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


def cmd_refit(args: argparse.Namespace) -> None:
    """Refit each sweep dir in a scratch copy and compare fits.json byte for byte."""
    from scalerec.scaling.fits import fit

    ok = True
    for src in map(Path, args.dirs):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(src / "results.parquet", Path(tmp) / "results.parquet")
            committed = json.loads((src / "fits.json").read_text())
            t = time.perf_counter()
            fit(tmp, n_boot=committed["n_boot"])
            same = (Path(tmp) / "fits.json").read_bytes() == (src / "fits.json").read_bytes()
        ok &= same
        print(json.dumps({"name": "refit", "dir": str(src), "identical": same, "s": time.perf_counter() - t}))
    sys.exit(0 if ok else 1)


def cmd_timing(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    n, d = np.meshgrid(np.geomspace(1e4, 1e7, args.sizes), np.geomspace(1e5, 1e8, args.data))
    n, d = n.ravel(), d.ravel()
    y = (1.5 + 400 * n**-0.34 + 410 * d**-0.28) * np.exp(rng.normal(0, args.noise, n.size))
    t0 = time.perf_counter()
    fit = laws.fit_joint(n, d, y)
    t1 = time.perf_counter()
    laws.bootstrap_law(fit, [n, d], y, n_boot=args.n_boot)
    t2 = time.perf_counter()
    identify.profiles([n, d], y, fit)
    t3 = time.perf_counter()
    starts = len(laws.start_grid(np.log(np.vstack([n, d])), np.log(y)))
    for name, s in (("joint_fit_all_starts", t1 - t0), ("bootstrap", t2 - t1), ("profiles", t3 - t2)):
        print(
            json.dumps({"name": name, "points": int(y.size), "starts": starts, "n_boot": args.n_boot, "s": s})
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sim = sub.add_parser("simulate", help="parametric bootstrap of a planned grid")
    sim.add_argument("--spec", help="sweep spec TOML; planned runs from its dry run (needs the dataset)")
    sim.add_argument("--set", action="append", default=[], help="spec override, as for `scalerec sweep`")
    sim.add_argument("--n", default="", help="non-embedding parameter counts, comma-separated")
    sim.add_argument("--d", default="", help="training targets per run, comma-separated")
    sim.add_argument("--seeds", type=int, default=1, help="runs per (N, D) cell")
    sim.add_argument("--law", required=True, help="E=…,A_N=…,alpha_N=…,A_D=…,alpha_D=…")
    sim.add_argument("--noise", type=float, default=0.005, help="log-space sd of one run's metric")
    sim.add_argument("--noise-from", help="sweep dir: take the noise from its seed-to-seed spread")
    sim.add_argument("--metric", default="valid_loss")
    sim.add_argument("--reps", type=int, default=20)
    sim.add_argument("--n-boot", type=int, default=50)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--out", help="write every replicate and the summary here (JSON)")
    sim.set_defaults(func=cmd_simulate)
    ref = sub.add_parser("refit", help="refit committed sweeps; exit 1 unless fits.json is reproduced")
    ref.add_argument("dirs", nargs="+")
    ref.set_defaults(func=cmd_refit)
    tim = sub.add_parser("timing", help="time one joint fit, its bootstrap and its profiles")
    tim.add_argument("--sizes", type=int, default=6)
    tim.add_argument("--data", type=int, default=5)
    tim.add_argument("--noise", type=float, default=0.005)
    tim.add_argument("--n-boot", type=int, default=100)
    tim.set_defaults(func=cmd_timing)
    args = ap.parse_args()
    if args.cmd == "simulate" and not args.spec and not (args.n and args.d):
        ap.error("simulate needs --spec or both --n and --d")
    from scalerec.errors import UserError

    try:
        args.func(args)
    except UserError as exc:  # e.g. the spec's dataset is not prepared yet
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
