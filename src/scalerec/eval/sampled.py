"""Sampled ranking: the target against N sampled negatives — only to compare with papers that used it.

Many sequential-recommendation papers (SASRec, BERT4Rec, S3Rec) report HR/NDCG among 1 target + 100
negatives. Those numbers are not comparable to full-catalog ranking and can even reorder models
(Krichene & Rendle, "On Sampled Metrics for Item Recommendation", KDD 2020), so everything this
module returns is prefixed `sampled{N}_{strategy}/` and never mixed with full-ranking keys.

Negatives are drawn per user from the catalog (uniform) or from training popularity, without the
target and (optionally) without the user's history; ties count against the model, as in full ranking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from scalerec.eval.metrics import metrics_from_ranks
from scalerec.memory import require, sampled_eval_bytes

if TYPE_CHECKING:
    from scalerec.data.read.sequences import UserSequences

Strategy = Literal["uniform", "popularity"]


def _forbidden_keys(targets: np.ndarray, n_rows: int, exclude: UserSequences | None) -> np.ndarray:
    """Sorted int64 keys `user * n_rows + item` a user's negatives must avoid (target, history)."""
    users = np.arange(len(targets), dtype=np.int64)
    keys = [users * n_rows + targets]
    if exclude is not None:
        rows = np.repeat(users, np.diff(np.asarray(exclude.offsets)))
        keys.append(rows * n_rows + np.asarray(exclude.items, dtype=np.int64))
    return np.unique(np.concatenate(keys))


def sample_negatives(
    targets: np.ndarray,
    n_items: int,
    n_negatives: int = 100,
    strategy: Strategy = "uniform",
    popularity: np.ndarray | None = None,
    exclude: UserSequences | None = None,
    seed: int = 0,
    max_rounds: int = 50,
) -> np.ndarray:
    """`int64[U, N]` negative item ids in 1..n_items, none equal to the user's target or history.

    Drawn with replacement per user (rejection of forbidden draws); `popularity` is the
    `item_popularity` count vector `[n_items+1]` used when `strategy == "popularity"`.
    """
    require(sampled_eval_bytes(len(targets), n_negatives),
            f"sampled evaluation ({n_negatives:,} negatives x {len(targets):,} users)")
    rng = np.random.default_rng(seed)
    targets = np.asarray(targets, dtype=np.int64)
    if strategy == "popularity":
        if popularity is None:
            raise ValueError("popularity sampling needs the item popularity counts")
        p = np.asarray(popularity, dtype=np.float64)[1 : n_items + 1]
        p = p / p.sum() if p.sum() > 0 else np.full(n_items, 1.0 / n_items)
        cdf = np.cumsum(p)

        def draw(size: int) -> np.ndarray:
            return np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right"), n_items - 1) + 1
    elif strategy == "uniform":

        def draw(size: int) -> np.ndarray:
            return rng.integers(1, n_items + 1, size=size)
    else:
        raise ValueError(f"unknown negative strategy {strategy!r} (uniform|popularity)")

    n_rows = n_items + 1
    forbidden = _forbidden_keys(targets, n_rows, exclude)
    neg = draw(len(targets) * n_negatives).reshape(len(targets), n_negatives)
    users = np.arange(len(targets), dtype=np.int64)[:, None]
    for _ in range(max_rounds):
        keys = users * n_rows + neg
        pos = np.searchsorted(forbidden, keys).clip(max=len(forbidden) - 1)
        bad = forbidden[pos] == keys
        if not bad.any():
            return neg
        neg[bad] = draw(int(bad.sum()))
    raise ValueError("could not sample negatives outside the users' histories (catalog too small?)")


@torch.no_grad()
def sampled_rank(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    targets: torch.Tensor | np.ndarray,
    negatives: np.ndarray,
    chunk_users: int = 4096,
) -> torch.Tensor:
    """1-based rank of each target among itself + its negatives `[U, N]` (ties pessimistic; a
    non-finite score is the worst score, so a diverged model gets the worst rank, not the best)."""
    tgt = torch.as_tensor(np.asarray(targets)).long()
    neg = torch.as_tensor(negatives).long()
    dev = user_vecs.device
    ranks = torch.empty(len(tgt), dtype=torch.int64)
    for u0 in range(0, len(tgt), chunk_users):
        u = user_vecs[u0 : u0 + chunk_users].float()
        t = tgt[u0 : u0 + chunk_users].to(dev)
        n = neg[u0 : u0 + chunk_users].to(dev)
        ts = (u * item_vecs[t].float()).sum(-1, keepdim=True)  # [cu, 1]
        ns = torch.einsum("ud,und->un", u, item_vecs[n].float())  # [cu, N]
        ns = ns.nan_to_num(nan=float("-inf"), posinf=float("-inf"))  # non-finite = worst score
        worst = ~torch.isfinite(ts[:, 0])  # a non-finite target ranks below all its negatives
        r = torch.where(worst, ns.shape[1], (ns >= ts).sum(1)) + 1
        ranks[u0 : u0 + chunk_users] = r.cpu()
    return ranks


def sampled_metrics(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    targets: torch.Tensor | np.ndarray,
    n_negatives: int = 100,
    strategy: Strategy = "uniform",
    popularity: np.ndarray | None = None,
    exclude: UserSequences | None = None,
    ks: tuple[int, ...] = (1, 5, 10),
    seed: int = 0,
) -> dict[str, float]:
    """Metrics of the sampled protocol, keys prefixed `sampled{N}_{strategy}/` (e.g. `.../ndcg@10`)."""
    n_items = item_vecs.shape[0] - 1
    negs = sample_negatives(np.asarray(targets), n_items, n_negatives, strategy, popularity, exclude, seed)
    ranks = sampled_rank(user_vecs, item_vecs, targets, negs)
    prefix = f"sampled{n_negatives}_{strategy}/"
    return {prefix + k: v for k, v in metrics_from_ranks(ranks, ks).items()}


@torch.no_grad()
def paper_sampled_metrics(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    targets: torch.Tensor | np.ndarray,
    n_negatives: int = 10_000,
    block: int = 128,
    ks: tuple[int, ...] = (5, 10),
    seed: int = 0,
) -> dict[str, float]:
    """The scaling study's own metric (../shared/PAPER.md): the target against `n_negatives` items
    drawn uniformly once per block of `block` users, positives and history not excluded.

    Kept apart from `sampled_metrics` because the protocols differ (shared draws, no exclusion),
    and a figure is only comparable to the paper's under its exact protocol. A drawn negative equal
    to the target does not count against it (strict `>`: the target cannot beat itself); a
    non-finite target score ranks last. Keys: `paper_sampled{N}/ndcg@5`, ...
    """
    tgt = torch.as_tensor(np.asarray(targets)).long().to(user_vecs.device)
    n_items = item_vecs.shape[0] - 1
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ranks = torch.empty(len(tgt), dtype=torch.int64)
    for u0 in range(0, len(tgt), block):
        u = user_vecs[u0 : u0 + block].float()
        t = tgt[u0 : u0 + block]
        negs = torch.randint(1, n_items + 1, (n_negatives,), generator=gen).to(user_vecs.device)
        ts = (u * item_vecs[t].float()).sum(-1, keepdim=True)  # [b, 1]
        ns = (u @ item_vecs[negs].float().T).nan_to_num(nan=float("-inf"), posinf=float("-inf"))
        worst = ~torch.isfinite(ts[:, 0])
        r = torch.where(worst, n_negatives, (ns > ts).sum(1)) + 1
        ranks[u0 : u0 + block] = r.cpu()
    prefix = f"paper_sampled{n_negatives}/"
    return {prefix + k: v for k, v in metrics_from_ranks(ranks, ks).items()}
