"""Most-popular closed-form ranks and sampled ranking, each against a direct reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scalerec.data.read.sequences import UserSequences
from scalerec.eval.baselines import most_popular_ranks, most_popular_topk, popularity_counts
from scalerec.eval.ranking import brute_force_rank
from scalerec.eval.sampled import sample_negatives, sampled_metrics, sampled_rank


def _histories(rng: np.random.Generator, n_users: int, n_items: int) -> UserSequences:
    return UserSequences.from_lists(
        [list(rng.integers(1, n_items + 1, size=rng.integers(0, 7))) for _ in range(n_users)], n_items
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 9999), n_users=st.integers(1, 30), n_items=st.integers(1, 40), mask=st.booleans())
def test_most_popular_equals_brute_force(seed, n_users, n_items, mask) -> None:
    rng = np.random.default_rng(seed)
    hist = _histories(rng, n_users, n_items)
    targets = rng.integers(1, n_items + 1, size=n_users)
    pop = popularity_counts(hist, n_items)
    got = most_popular_ranks(pop, targets, hist if mask else None)
    # the same scorer through the generic ranking reference: 1-d vectors, score = popularity
    users = torch.ones(n_users, 1)
    items = torch.as_tensor(pop, dtype=torch.float32)[:, None]
    want = brute_force_rank(users, items, targets, exclude=hist if mask else None)
    np.testing.assert_array_equal(got, want.numpy())


def test_most_popular_topk_and_counts() -> None:
    hist = UserSequences.from_lists([[1, 2, 2], [3, 2]], 4)
    pop = popularity_counts(hist, 4)
    assert pop.tolist() == [0, 1, 3, 1, 0]
    assert most_popular_topk(pop, 3).tolist() == [2, 1, 3]
    assert most_popular_ranks(pop, np.array([1, 4])).tolist() == [3, 4]


def test_sampled_negatives_avoid_target_and_history() -> None:
    rng = np.random.default_rng(0)
    hist = _histories(rng, 50, 20)
    targets = rng.integers(1, 21, size=50)
    pop = popularity_counts(hist, 20) + 1
    for strategy in ("uniform", "popularity"):
        neg = sample_negatives(targets, 20, 30, strategy, pop, exclude=hist, seed=1)
        assert neg.shape == (50, 30) and neg.min() >= 1 and neg.max() <= 20
        for u in range(50):
            assert targets[u] not in neg[u]
            assert not set(hist.row(u).tolist()) & set(neg[u].tolist())
    with pytest.raises(ValueError):
        sample_negatives(targets, 20, 5, "popularity", None)


def test_popularity_sampling_follows_counts() -> None:
    pop = np.array([0, 1, 1, 8], dtype=np.int64)
    neg = sample_negatives(np.full(2000, 1), 3, 10, "popularity", pop, seed=0)
    share = (neg == 3).mean()
    assert share == pytest.approx(8 / 9, abs=0.02)  # item 1 (the target) is never drawn


def test_sampled_rank_matches_direct_count_and_is_labelled() -> None:
    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(20, 4, generator=g), torch.randn(31, 4, generator=g)
    targets = torch.randint(1, 31, (20,), generator=g)
    neg = sample_negatives(targets.numpy(), 30, 10, seed=3)
    ranks = sampled_rank(users, items, targets, neg, chunk_users=7)
    scores = users @ items.T
    for u in range(20):
        ts = scores[u, targets[u]]
        assert ranks[u] == 1 + int((scores[u, torch.as_tensor(neg[u])] >= ts).sum())
    m = sampled_metrics(users, items, targets, n_negatives=10, ks=(10,))
    assert set(m) == {"sampled10_uniform/ndcg@10", "sampled10_uniform/hr@10", "sampled10_uniform/mrr@10",
                      "sampled10_uniform/mrr"}
    assert m["sampled10_uniform/hr@10"] > 0.0
