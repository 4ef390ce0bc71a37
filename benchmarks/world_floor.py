"""Benchmark: the known-floor world — its floor against Monte Carlo, why size keeps paying off, and
how fast users are generated.

Prints JSON lines: (1) the closed-form validation floor H(p) + H(q) beside the mean log-loss of the
Bayes-optimal predictor on freshly sampled users (with its standard error); (2) the memorisation
curve — excess loss over the floor of a predictor that knows the R most used rules (falling back to
the topic marginal elsewhere) and the local power-law slope d log(excess) / d log R, the argument
that loss keeps falling with capacity over the decades of R where the slope is steady; (3) the
generator's users/s with numpy and with torch on the given device.

    python benchmarks/world_floor.py [--users 200000] [--device cuda] [--set zipf=1.2 ...]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from scalerec.data.ingest.world import World, WorldConfig

RULES = [10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000]


def _value(text: str) -> float | int | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text  # e.g. context=variant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="WorldConfig field=value")
    args = ap.parse_args()
    cfg = WorldConfig(**{k: _value(v) for k, v in (o.split("=", 1) for o in args.overrides)})
    world = World.build(cfg)
    t0 = time.perf_counter()
    seqs = world.sequences(np.arange(args.users), stream_seed=123)
    numpy_s = time.perf_counter() - t0
    logp = world.bayes_logprob(seqs)[:, -1]  # the validation/test position
    print(
        json.dumps(
            {
                "world": cfg.__dict__,
                "bayes_floor": world.bayes_floor(),
                "monte_carlo": float(-logp.mean()),
                "mc_stderr": float(logp.std() / np.sqrt(len(logp))),
                "train_floor": world.train_floor(),
                "users": args.users,
            }
        )
    )
    curve = world.memorisation_curve(args.users, RULES, stream_seed=7)
    for a, b in zip(curve, curve[1:], strict=False):
        slope = (
            (np.log(b["excess_nats"]) - np.log(a["excess_nats"])) / np.log(b["rules"] / a["rules"])
            if a["excess_nats"] > 0 and b["excess_nats"] > 0
            else None
        )
        print(json.dumps({**a, "local_slope_to_next": slope}))
    rate = {"numpy_users_per_s": args.users / numpy_s}
    import torch

    from scalerec.train.world_stream import WorldGenerator

    gen = WorldGenerator(world, torch.device(args.device))
    users = torch.arange(65_536, device=args.device)
    gen.sequences(users, 0)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(3):
        gen.sequences(users + i * 65_536, 0)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    rate[f"torch_{args.device}_users_per_s"] = 3 * 65_536 / (time.perf_counter() - t0)
    rate["targets_per_user"] = cfg.length - 1
    print(json.dumps(rate))


if __name__ == "__main__":
    main()
