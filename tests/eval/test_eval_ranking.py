"""Chunked full ranking equals the brute-force score matrix (random sizes, ties, chunks, masking)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scalerec.eval.ranking import brute_force_rank, full_rank


@dataclass
class _Seqs:
    """Stand-in with the `UserSequences` contract fields (offsets, items, n_items)."""

    offsets: np.ndarray
    items: np.ndarray
    n_items: int

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def _world(seed: int, n_users: int, n_items: int, d: int, levels: int):
    """Small-integer vectors: every dot product is exact in fp32, and ties are common."""
    g = torch.Generator().manual_seed(seed)
    users = torch.randint(-levels, levels + 1, (n_users, d), generator=g).float()
    items = torch.randint(-levels, levels + 1, (n_items + 1, d), generator=g).float()
    targets = torch.randint(1, n_items + 1, (n_users,), generator=g)
    rng = np.random.default_rng(seed)
    lens = rng.integers(0, min(n_items, 6) + 1, size=n_users)
    items_seen = np.concatenate([rng.choice(np.arange(1, n_items + 1), size=n, replace=False) for n in lens])
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    seqs = _Seqs(offsets, items_seen.astype(np.int32), n_items)
    return users, items, targets, seqs


def _topk_reference(users, items, targets, seqs):
    """Full score matrix with padding and seen items (except the target) pushed to the bottom."""
    scores = users @ items.T
    scores[:, 0] = float("-inf")
    if seqs is not None:
        for u in range(scores.shape[0]):
            seen = torch.as_tensor(seqs.items[seqs.offsets[u] : seqs.offsets[u + 1]]).long()
            scores[u, seen[seen != targets[u]]] = -1e30
    return scores


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_users=st.integers(1, 40),
    n_items=st.integers(1, 80),
    d=st.integers(1, 6),
    levels=st.integers(0, 2),
    cu=st.integers(1, 50),
    ci=st.integers(1, 100),
    mask=st.booleans(),
)
def test_chunked_equals_brute_force(seed, n_users, n_items, d, levels, cu, ci, mask) -> None:
    users, items, targets, seqs = _world(seed, n_users, n_items, d, levels)
    exclude = seqs if mask else None
    got = full_rank(users, items, targets, exclude=exclude, chunk_users=cu, chunk_items=ci)
    want = brute_force_rank(users, items, targets, exclude=exclude)
    assert torch.equal(got, want)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), ci=st.integers(1, 64), k=st.integers(1, 12), mask=st.booleans())
def test_topk_scores_match_reference(seed, ci, k, mask) -> None:
    users, items, targets, seqs = _world(seed, 17, 50, 4, 3)
    exclude = seqs if mask else None
    ranks, top = full_rank(users, items, targets, exclude=exclude, chunk_users=5, chunk_items=ci, topk=k)
    ref = _topk_reference(users, items, targets, exclude)
    want_scores = torch.topk(ref, k, dim=1).values
    assert torch.equal(torch.gather(ref, 1, top), want_scores)  # same scores (ids may differ on ties)
    assert (top != 0).all()
    assert ranks.shape == (17,)


def test_ties_are_pessimistic_and_padding_never_ranked() -> None:
    users = torch.ones(2, 3)
    items = torch.zeros(6, 3)
    items[0] = 100.0  # padding row with a huge score must not count
    ranks = full_rank(users, items, torch.tensor([1, 5]), chunk_items=2)
    assert ranks.tolist() == [5, 5]  # constant scorer: worst rank among 5 items


def test_target_never_masked_even_if_seen() -> None:
    users = torch.tensor([[1.0, 0.0]])
    items = torch.tensor([[0.0, 0.0], [3.0, 0.0], [2.0, 0.0], [1.0, 0.0]])
    seqs = _Seqs(np.array([0, 2]), np.array([1, 2], dtype=np.int32), 3)
    assert full_rank(users, items, torch.tensor([2])).tolist() == [2]
    assert full_rank(users, items, torch.tensor([2]), exclude=seqs).tolist() == [1]
    assert full_rank(users, items, torch.tensor([3]), exclude=seqs).tolist() == [1]


def test_bf16_inputs_rank_like_fp32_on_well_separated_scores() -> None:
    users = torch.eye(4)
    items = torch.cat([torch.zeros(1, 4), torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0])).repeat(3, 1)])
    targets = torch.tensor([1, 2, 3, 4])
    got = full_rank(users, items, targets, dtype=torch.bfloat16, chunk_items=5)
    assert got.tolist() == brute_force_rank(users, items, targets).tolist() == [3, 3, 3, 3]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_cuda_chunked_equals_brute_force(dtype) -> None:
    users, items, targets, seqs = _world(0, 300, 5000, 16, 3)  # small ints: exact in bf16 too
    got, top = full_rank(users.cuda(), items.cuda(), targets, exclude=seqs, chunk_users=128,
                         chunk_items=1024, topk=50, dtype=dtype)
    want = brute_force_rank(users, items, targets, exclude=seqs)
    assert torch.equal(got, want)
    ref = _topk_reference(users, items, targets, seqs)
    assert torch.equal(torch.gather(ref, 1, top), torch.topk(ref, 50, dim=1).values)
