"""Transfer evaluation: full-catalog ranks overall, on cold-start targets, and for most-popular.

Cold start (the point of a text model): a test target that never occurs in the target domain's
*training* interactions. A text model scores it from its title alone; an ID model has no trained
vector for it, so its cold-start result is an explicit "cannot score unseen items" entry rather
than a meaningless number from a never-updated embedding row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from scalerec.data.read.sequences import UserSequences
from scalerec.eval.heldout import rank_heldout
from scalerec.eval.metrics import bootstrap_ci, metrics_from_ranks

if TYPE_CHECKING:
    from scalerec.model.recommender import SequentialRecommender

REPORTED = ("ndcg@10", "hr@10", "mrr")
KS = (5, 10, 20)
ID_COLD_REASON = "ID-based model cannot score items unseen in training (no trained vector for them)"


@torch.no_grad()
def rank_targets(
    model: SequentialRecommender,
    histories: UserSequences,
    targets: np.ndarray,
    max_len: int,
    batch_size: int = 512,
    device: str = "cpu",
) -> np.ndarray:
    """int64[U] 1-based full-catalog rank of each target (ties pessimistic; history not masked).

    The same held-out path as training and `scalerec evaluate` (`scalerec.eval.heldout`), with the
    forward pass in fp32 as transfer always ran it.
    """
    held = rank_heldout(model, histories, targets, max_len, batch_size, device, None)
    return np.asarray(held.ranks, dtype=np.int64)


def cold_mask(train: UserSequences, targets: np.ndarray) -> np.ndarray:
    """bool[U]: targets that never occur in the training interactions."""
    seen = np.zeros(max(train.n_items, int(np.max(targets, initial=0))) + 1, dtype=bool)
    seen[train.items] = True
    return ~seen[np.asarray(targets, dtype=np.int64)]


def most_popular_ranks(popularity: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """int64[U] rank of each target when every user gets items by training count (ties pessimistic:
    rank = number of items at least as popular as the target, itself included)."""
    counts = np.asarray(popularity[1:], dtype=np.int64)
    ordered = np.sort(counts)
    t = np.asarray(popularity, dtype=np.int64)[np.asarray(targets, dtype=np.int64)]
    return (len(counts) - np.searchsorted(ordered, t, side="left")).astype(np.int64)


def metric_block(ranks: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """`{"n", metric: mean, …, "ci": {metric: [lo, hi]}}` for the reported metrics (+ other ks)."""
    ranks = np.asarray(ranks)
    block: dict[str, Any] = {"n": int(len(ranks))}
    if len(ranks) == 0:
        return block
    block.update(metrics_from_ranks(ranks, KS))
    if n_boot > 0:
        cis = bootstrap_ci(ranks, list(REPORTED), n_boot=n_boot, seed=seed)
        assert isinstance(cis, dict)
        block["ci"] = {m: [lo, hi] for m, (lo, hi) in cis.items()}
    return block


def split_blocks(
    ranks: np.ndarray, cold: np.ndarray, item_encoder: str, n_boot: int = 1000
) -> dict[str, Any]:
    """`{"overall": block, "cold": block | unsupported}` for one set of test ranks."""
    overall = metric_block(ranks, n_boot)
    if item_encoder == "id":  # text and hybrid models score a cold item by its text
        return {"overall": overall, "cold": {"status": "unsupported", "reason": ID_COLD_REASON,
                                             "n": int(cold.sum())}}
    return {"overall": overall, "cold": metric_block(ranks[cold], n_boot)}
