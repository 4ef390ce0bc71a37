"""Validation and test during training: full-catalog ranking metrics and full-softmax CE loss.

Ranking and metrics come from `scalerec.eval` (the same code `scalerec evaluate` uses), so a run's
`final.json` and a later evaluation agree. The loss reported for scaling fits is the exact
full-softmax cross-entropy of the held-out item, not the sampled training loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from scalerec.data.read.sequences import UserSequences, pad_left
from scalerec.device import autocast

if TYPE_CHECKING:
    from scalerec.model.recommender import SequentialRecommender


@torch.no_grad()
def user_vectors(
    model: SequentialRecommender,
    histories: UserSequences,
    max_len: int,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
) -> torch.Tensor:
    """[U, d] float32: hidden state at each history's last item (most recent `max_len` items)."""
    padded, lengths = pad_left(histories, max_len)
    out = []
    for i in range(0, len(padded), batch_size):
        x = torch.as_tensor(padded[i : i + batch_size], device=device)
        n = torch.as_tensor(lengths[i : i + batch_size], device=device)
        with autocast(device, dtype):
            out.append(model.last_hidden(x, n).float())
    return torch.cat(out) if out else torch.zeros(0, model.cfg.d_model, device=device)


@torch.no_grad()
def full_softmax_loss(
    users: torch.Tensor, items: torch.Tensor, targets: torch.Tensor, chunk: int = 1024
) -> float:
    """Mean CE of the target over items 1..I. users [U, d], items [I+1, d], targets int64[U]."""
    total = 0.0
    for i in range(0, len(users), chunk):
        logits = users[i : i + chunk] @ items.T
        logits[:, 0] = float("-inf")
        total += float(torch.nn.functional.cross_entropy(logits, targets[i : i + chunk], reduction="sum"))
    return total / max(1, len(users))


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
) -> dict[str, float]:
    """{"loss", "ndcg@10", "hr@10", "mrr@10", ...} of `model` on (histories → targets), full ranking."""
    from scalerec.eval.metrics import metrics_from_ranks
    from scalerec.eval.ranking import full_rank

    was_training = model.training
    model.eval()
    try:
        users = user_vectors(model, histories, max_len, batch_size, device, dtype)
        with autocast(device, dtype):
            items = model.all_item_vectors().float()
        tgt = torch.as_tensor(targets.astype(np.int64), device=device)
        ranks = full_rank(users, items, tgt, exclude=histories if mask_seen else None)
        metrics = metrics_from_ranks(ranks.numpy(), ks=tuple(ks))
        metrics = {"loss": full_softmax_loss(users, items, tgt), **metrics}
    finally:
        model.train(was_training)
    return {k: float(v) for k, v in metrics.items()}
