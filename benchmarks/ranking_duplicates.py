"""Exact full ranking over a catalog where many items share one vector, with and without counting the
duplicates of the target as ties by group (`exact.duplicate_groups`), in the same run.

Why: a text encoder gives every item with the same text the same vector. The pooled corpus has 16,555 such
items (the Sports items with no title), so a user whose target is one of them has 16,555 exact ties
in the re-scoring band. Before the groups, each of them was re-scored in fp64. This benchmark uses the
pooled corpus's shape (61,545 items, 16,555 of them identical, d 64) with random vectors, and users whose
targets are drawn from the whole catalog (about 27% fall in the duplicate group, as there).

    python benchmarks/ranking_duplicates.py --users 2000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from unittest import mock

import torch

from scalerec.eval import exact, ranking


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=61_545)
    ap.add_argument("--duplicates", type=int, default=16_555)
    ap.add_argument("--users", type=int, default=2_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    g = torch.Generator().manual_seed(a.seed)
    items = torch.randn(a.items + 1, a.dim, generator=g)
    items[1 : a.duplicates + 1] = items[1]  # one shared vector, as text-less items get
    users = torch.randn(a.users, a.dim, generator=g)
    targets = torch.randint(1, a.items + 1, (a.users,), generator=g)

    def timed(grouped: bool) -> tuple[float, torch.Tensor]:
        no_groups = mock.patch.object(exact, "duplicate_groups", lambda x: None)  # every band item re-scored
        with no_groups if not grouped else contextlib.nullcontext():
            t0 = time.perf_counter()
            ranks = ranking.full_rank(users, items, targets, dtype=torch.float32)
            return time.perf_counter() - t0, ranks

    t_old, r_old = timed(False)
    t_new, r_new = timed(True)
    t_old2, _ = timed(False)
    t_new2, _ = timed(True)
    t0 = time.perf_counter()
    exact.duplicate_groups(items)  # the grouping alone: built at the start of every ranker
    t_groups = time.perf_counter() - t0
    in_group = int(((targets >= 1) & (targets <= a.duplicates)).sum())
    print(json.dumps({
        "benchmark": "ranking_duplicates", "items": a.items, "duplicates": a.duplicates, "users": a.users,
        "targets_in_duplicate_group": in_group, "threads": torch.get_num_threads(),
        "rescore_all_s": [round(t_old, 3), round(t_old2, 3)],
        "grouped_s": [round(t_new, 3), round(t_new2, 3)], "grouping_alone_s": round(t_groups, 3),
        "speedup": round(min(t_old, t_old2) / min(t_new, t_new2), 2),
        "identical_ranks": bool(torch.equal(r_old, r_new)),
    }))


if __name__ == "__main__":
    main()
