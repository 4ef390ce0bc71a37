"""The scaling paper's sampled protocol: shared uniform draws per block of users, no exclusion."""

from __future__ import annotations

import math

import numpy as np
import torch

from scalerec.eval.sampled import paper_sampled_metrics


def _brute_ranks(
    users: torch.Tensor, items: torch.Tensor, targets: np.ndarray, n: int, block: int, seed: int
) -> np.ndarray:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ranks = []
    for u0 in range(0, len(targets), block):
        negs = torch.randint(1, items.shape[0], (n,), generator=gen)
        for u in range(u0, min(u0 + block, len(targets))):
            t = float(users[u] @ items[targets[u]])
            ranks.append(1 + sum(float(users[u] @ items[j]) > t for j in negs.tolist()))
    return np.array(ranks)


def test_matches_a_brute_force_count_with_shared_draws_per_block() -> None:
    g = torch.Generator().manual_seed(1)
    users, items = torch.randn(10, 4, generator=g), torch.randn(31, 4, generator=g)
    targets = np.arange(1, 11)
    got = paper_sampled_metrics(users, items, targets, n_negatives=20, block=3, ks=(5,), seed=7)
    ranks = _brute_ranks(users, items, targets, 20, 3, 7)
    ndcg5 = np.where(ranks <= 5, 1.0 / np.log2(ranks + 1.0), 0.0).mean()
    assert math.isclose(got["paper_sampled20/ndcg@5"], ndcg5, rel_tol=1e-9)
    assert math.isclose(got["paper_sampled20/hr@5"], float((ranks <= 5).mean()), rel_tol=1e-9)


def test_the_target_drawn_as_a_negative_does_not_count_against_it() -> None:
    # one item in the catalog: every draw is the target itself, so the target must rank first
    users, items = torch.ones(5, 2), torch.ones(2, 2)
    got = paper_sampled_metrics(users, items, np.ones(5, dtype=np.int64), n_negatives=50, ks=(5,))
    assert got["paper_sampled50/hr@5"] == 1.0


def test_a_non_finite_target_score_ranks_last() -> None:
    users = torch.tensor([[float("nan"), 1.0]])
    items = torch.randn(20, 2)
    got = paper_sampled_metrics(users, items, np.array([3]), n_negatives=10, ks=(5,))
    assert got["paper_sampled10/hr@5"] == 0.0
