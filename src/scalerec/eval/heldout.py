"""Held-out evaluation of a model on (histories → targets): the one path behind every reported number.

Validation during training, the test metrics in `final.json`, `scalerec evaluate` and transfer
all call `rank_heldout`: same user encoding, same exact ranking (`full_rank`, exact in any
precision), so the same weights on the same split always give the same ranks. The loss reported
for scaling fits is the exact full-softmax cross-entropy of the held-out item, not the sampled
training loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from scalerec.eval.encode import item_vectors, user_vectors
from scalerec.eval.metrics import metrics_from_ranks
from scalerec.eval.ranking import full_rank

if TYPE_CHECKING:
    from scalerec.data.read.sequences import UserSequences
    from scalerec.model.recommender import SequentialRecommender


@dataclass
class Heldout:
    """Vectors and exact ranks of one held-out split."""

    users: torch.Tensor  # [U, d] float32
    items: torch.Tensor  # [I+1, d] float32
    ranks: torch.Tensor  # int64 [U] on CPU, 1-based, ties pessimistic, non-finite scores worst


@torch.no_grad()
def rank_heldout(
    model: SequentialRecommender,
    histories: UserSequences,
    targets: np.ndarray,
    max_len: int,
    batch_size: int,
    device: torch.device | str,
    dtype: torch.dtype | None,
    mask_seen: bool = False,
    trim: bool = True,
) -> Heldout:
    """Encode users and items with `model` (eval mode, autocast `dtype`) and rank every target.
    `trim=False`: users encoded at full `max_len` width (`user_vectors`), for comparison only."""
    was_training = model.training
    model.eval()
    try:
        users = user_vectors(model, histories, max_len, batch_size, device, dtype, trim)
        items = item_vectors(model, device, dtype)
    finally:
        model.train(was_training)
    tgt = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    ranks = full_rank(users, items, tgt, exclude=histories if mask_seen else None)
    return Heldout(users, items, ranks)


@torch.no_grad()
def full_softmax_stats(
    users: torch.Tensor, items: torch.Tensor, targets: torch.Tensor, chunk: int = 1024
) -> dict[str, float]:
    """Mean CE of the target over items 1..I ("loss"), and the scale of the logits it comes from.
    users [U, d], items [I+1, d], targets int64[U].

    The scale is a numerics health check: softmax ignores the offset that every item's logit shares
    ("logit_mean", the mean over users of the mean logit across items), so training is free to grow
    it, while the loss reads only the spread across items ("logit_sd"). Where the offset grows far
    past the spread, bf16 arithmetic rounds the differences away (the bf16 stall of 2026-12-05,
    BENCHMARKS.md); "user_norm" and "item_norm" are the mean vector norms behind it."""
    total = offset = spread = 0.0
    targets = targets.to(users.device)
    for i in range(0, len(users), chunk):
        logits = users[i : i + chunk] @ items.T
        sd, mean = torch.std_mean(logits[:, 1:], dim=1)  # one pass over the chunk's logits, not two
        offset += float(mean.sum())
        spread += float(sd.sum())
        logits[:, 0] = float("-inf")
        total += float(torch.nn.functional.cross_entropy(logits, targets[i : i + chunk], reduction="sum"))
    n = max(1, len(users))
    return {"loss": total / n, "logit_mean": offset / n, "logit_sd": spread / n,
            "user_norm": float(users.norm(dim=1).mean()) if len(users) else 0.0,
            "item_norm": float(items[1:].norm(dim=1).mean()) if len(items) > 1 else 0.0}


def subset(histories: UserSequences, targets: np.ndarray, max_users: int | None, seed: int):
    """A fixed random subset of users (same every call), or everything."""
    n = histories.n_users
    if max_users is None or max_users >= n:
        return histories, targets
    rows = np.sort(np.random.default_rng([seed, 17]).choice(n, max_users, replace=False))
    return histories.take(rows), targets[rows]


@torch.no_grad()
def evaluate_split(
    model: SequentialRecommender,
    histories: UserSequences,
    targets: np.ndarray,
    max_len: int,
    ks: list[int],
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
    mask_seen: bool = False,
    paper_sampled: int = 0,
    trim: bool = True,
) -> dict[str, float]:
    """{"loss", "ndcg@10", "hr@10", "mrr@10", ..., and the logit scale of `full_softmax_stats`} of `model`
    on (histories → targets), full ranking;
    with `paper_sampled` > 0 also the scaling paper's sampled protocol (`eval.sampled`). `trim=False`
    encodes users at full width (the older path, for comparison; the same vectors
    up to fp32 rounding, see `user_vectors`)."""
    h = rank_heldout(model, histories, targets, max_len, batch_size, device, dtype, mask_seen, trim)
    metrics = metrics_from_ranks(h.ranks.numpy(), ks=tuple(ks))
    tgt = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    metrics = {**full_softmax_stats(h.users, h.items, tgt), **metrics}
    if paper_sampled > 0:
        from scalerec.eval.sampled import paper_sampled_metrics

        metrics.update(paper_sampled_metrics(h.users, h.items, tgt, paper_sampled))
    return {k: float(v) for k, v in metrics.items()}
