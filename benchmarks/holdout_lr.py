"""The LR a sweep's held-out sizes should train at, from the LR rule fitted on its finished sizes.

world_v6's m2 runs last, at `holdout_lr` "set from the fitted sizes' validation winners"
(configs/sweeps/world_v6.toml). This prints that rule (`scalerec.scaling.lr_rule`): each fitted size's LR
optimum at the largest D its search reached, the least-squares line log LR = a + b·log N through them, and
its value at each held-out size's N, with the spec line to paste. It reads validation losses only.

    python benchmarks/holdout_lr.py runs/world_v6/results.parquet --spec configs/sweeps/world_v6.toml
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from scalerec.model.flops import param_counts  # noqa: E402
from scalerec.scaling.lr_rule import fit_lr_rule  # noqa: E402
from scalerec.scaling.spec import load_spec, plan_runs  # noqa: E402


def holdout_sizes_n(spec_path: str, out: Path) -> dict[str, int]:
    """Non-embedding N of each held-out size, from the spec's own planned configs (no model is built)."""
    spec = load_spec(spec_path)
    runs = [r for r in plan_runs(spec, out) if r.holdout]
    return {r.size: param_counts(r.cfg.model)["non_embedding"] for r in runs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="the sweep's results.parquet")
    ap.add_argument("--spec", help="the sweep spec: its held-out sizes are evaluated")
    ap.add_argument("--n", type=int, action="append", default=[], help="also evaluate at this N")
    ap.add_argument("--encoder", default=None, help="fit one encoder's runs only (a twin sweep)")
    args = ap.parse_args(argv)
    rows = pq.read_table(args.results).to_pylist()
    rule = fit_lr_rule(rows, args.encoder)
    for p in rule.points:
        edge = "  AT THE GRID'S EDGE: the optimum lies beyond it" if p.at_edge else ""
        print(f"{p.size:>6}  N={p.n:>10,}  at {p.subset}: winner {p.lr_winner:.3g}, "
              f"optimum {p.lr_opt:.3g}{edge}")
    print(f"rule: log LR = {rule.intercept:.4f} {rule.slope:+.4f}·log N  (LR ∝ N^{rule.slope:.3f})")
    targets = holdout_sizes_n(args.spec, args.results.parent) if args.spec else {}
    targets.update({f"N={n}": n for n in args.n})
    for name, n in targets.items():
        lr = rule.predict(n)
        print(f"{name}: N={n:,} (x{n / max(p.n for p in rule.points):.2f} the largest fitted) -> LR {lr:.3g}"
              f"   spec: holdout_lr = {lr:.3g}")
    if any(p.at_edge for p in rule.points):
        print("warning: a size's winner is at its grid's edge: its point is a bound, and so is the rule")
    print(json.dumps({"rule": rule.to_dict(), "holdout": {k: rule.predict(v) for k, v in targets.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
