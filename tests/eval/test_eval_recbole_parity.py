"""Agreement with RecBole's full-sort NDCG@10 / HR@10 / MRR@10 on the ml-100k leave-one-out split.

RecBole (`recbole/evaluator/metrics.py`, full sort) masks each user's history with -inf, takes
`torch.topk(scores, k)`, builds the 0/1 `pos_index` of the top-k, and computes per user
  Hit@k  = 1 if any hit in the top-k,
  MRR@k  = 1 / (position of the first hit), 0 if none,
  NDCG@k = sum_i pos_index[i] / log2(i + 2)  /  IDCG with min(#positives, k) positives (here 1).
The reference below re-derives exactly that from a fixed score matrix; ours ranks the same matrix
through `full_rank` (chunked, masking) and `metrics_from_ranks`. The score matrix is fed as user
vectors against identity item vectors, so both sides see bit-identical scores.
"""

from __future__ import annotations

import functools
import gzip

import numpy as np
import pytest
import torch

from scalerec.data.read.sequences import UserSequences
from scalerec.data.read.splits import leave_one_out
from scalerec.eval.metrics import metrics_from_ranks
from scalerec.eval.ranking import full_rank


@functools.lru_cache(maxsize=1)
def _ml100k_sequences(path) -> UserSequences:
    with gzip.open(path, "rt") as fh:
        next(fh)
        raw = np.loadtxt(fh, dtype=np.int64, usecols=(0, 1, 3))
    users, items, ts = raw[:, 0], raw[:, 1], raw[:, 2]
    order = np.lexsort((ts, users))  # by user, then time (stable)
    _, uid = np.unique(users[order], return_inverse=True)
    item_keys, iid = np.unique(items[order], return_inverse=True)
    seqs = [[] for _ in range(uid.max() + 1)]
    for u, i in zip(uid, iid + 1, strict=True):
        seqs[u].append(int(i))
    return UserSequences.from_lists(seqs, len(item_keys))


def _recbole_full_sort(scores: torch.Tensor, histories: UserSequences, targets: np.ndarray, k: int):
    """RecBole's procedure: mask history + padding, topk, pos_index, per-user Hit/MRR/NDCG."""
    scores = scores.clone()
    scores[:, 0] = float("-inf")
    for u in range(scores.shape[0]):
        scores[u, torch.as_tensor(histories.row(u).astype(np.int64))] = float("-inf")
    topk_idx = torch.topk(scores, k, dim=1).indices.numpy()
    pos_index = topk_idx == targets[:, None]  # [U, k] bool, one positive per user
    hit = pos_index.cumsum(1) > 0
    idxs = np.where(pos_index.any(1), pos_index.argmax(1), -1)
    mrr = np.where(idxs >= 0, 1.0 / np.maximum(idxs + 1, 1), 0.0)
    dcg = (pos_index / np.log2(np.arange(2, k + 2))).sum(1)
    idcg = 1.0  # min(pos_len=1, k) = 1 ideal hit at position 1
    return {f"hr@{k}": hit[:, -1].mean(), f"mrr@{k}": mrr.mean(), f"ndcg@{k}": (dcg / idcg).mean()}


@pytest.mark.parametrize("seed", [0, 1])
def test_recbole_full_sort_agreement_ml100k(shared_data, seed: int) -> None:
    path = shared_data / "movielens_100k_recbole" / "ml-100k.inter.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    seqs = _ml100k_sequences(path)
    assert (seqs.n_users, seqs.n_items, len(seqs.items)) == (943, 1682, 100_000)
    histories, targets = leave_one_out(seqs).test
    targets = targets.astype(np.int64)
    g = torch.Generator().manual_seed(seed)
    # fixed score matrix: a rank-16 structure plus noise (continuous, so no ties)
    base = torch.randn(len(targets), 16, generator=g) @ torch.randn(16, seqs.n_items + 1, generator=g)
    scores = base + 0.5 * torch.randn(base.shape, generator=g)
    # make the task non-trivial: boost each user's target a bit
    scores[torch.arange(len(targets)), torch.as_tensor(targets)] += 6.0
    identity = torch.eye(seqs.n_items + 1)
    ranks = full_rank(scores, identity, targets, exclude=histories, chunk_users=200, chunk_items=500)
    ours = metrics_from_ranks(ranks, ks=(10,))
    ref = _recbole_full_sort(scores, histories, targets, k=10)
    assert ref["hr@10"] > 0.05  # the check is not vacuous
    for name in ("ndcg@10", "hr@10", "mrr@10"):
        assert round(ours[name], 4) == round(float(ref[name]), 4), name
        assert ours[name] == pytest.approx(float(ref[name]), abs=1e-9)
