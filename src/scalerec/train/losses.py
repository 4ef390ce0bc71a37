"""Next-item losses: full softmax CE, sampled softmax (shared or per-sample negatives), BCE.

Follows generative-recommenders' `sampled_softmax.py` and Yi et al. 2019 (logQ correction): logits
are `<h, v> / temperature - log q(item)` for the positive and every negative, negatives equal to the
target are masked (accidental hits), and the loss is cross-entropy with the positive as class 0.
Shared negatives (one `[N, d] @ [d, K]` matmul for the whole batch) are our default; per-sample
negatives (`[N, K, d]`, a batched matvec) reproduce the paper's RecBole loss.

Every function takes flat targets (`N` positions), a `weight` float[N] (1 = real target, 0 =
padding) and returns the **sum** of per-target losses, so the caller can normalise by the global
target count across micro-batches and DDP ranks. The softmax always runs in float32; with
`fp32=True` (the default of `train.logits_precision`) the logits' matmul does too, outside autocast.
Why: a trained model's logits share a large common offset that softmax ignores (the mean target
logit of the Beauty text model grows from ~49 to ~133 while their spread across items stays ~2.5),
and bf16 stores 128..256 in steps of 1.0, so a bf16 matmul output rounds away what separates the
items and training stalls (docs/results/accuracy/cpu_2026-12-05_packing_bf16/logit_scale.log).
`z_loss` (`train.z_loss`) adds `z · logsumexp²` per target, a restoring force on that offset: fp32
logits keep the matmul exact, but the bf16 vectors entering it still round to a step that grows
with the offset.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_MASKED = -1e9


def _wide(x: torch.Tensor) -> torch.Tensor:
    """`x` in float32, or float64 if it already is (the reference tests score in float64)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _scores(a: torch.Tensor, b: torch.Tensor, fp32: bool) -> torch.Tensor:
    """a [N, d] against b [K, d] (`a @ b.T`) or per row against b [N, K, d], as float32 [N, K]:
    computed in float32 outside autocast when `fp32`, else in the ambient autocast dtype and cast
    after (cheaper on tensor cores, but rounded to bf16 before the cast)."""

    def scores(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x @ y.T if y.dim() == 2 else torch.einsum("nd,nkd->nk", x, y)

    if not fp32:
        return scores(a, b).float()
    with torch.autocast(a.device.type, enabled=False):
        return scores(_wide(a), _wide(b)).float()


def _dots(a: torch.Tensor, b: torch.Tensor, fp32: bool) -> torch.Tensor:
    """Row-wise `<a_n, b_n>` as float32 (see `_scores`)."""
    if fp32:
        a, b = _wide(a), _wide(b)
    return (a * b).sum(-1).float()


def full_softmax_ce(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    item_vecs: torch.Tensor,
    weight: torch.Tensor | None = None,
    temperature: float = 1.0,
    fp32: bool = True,
    z_loss: float = 0.0,
) -> torch.Tensor:
    """Exact CE over the whole catalog. hidden [N,d], targets int64[N] (1..I), item_vecs [I+1,d]
    (row 0 = padding, excluded from the softmax). Returns the weighted sum of per-target losses."""
    logits = _scores(hidden, item_vecs, fp32) / temperature  # [N, I+1]
    logits[:, 0] = float("-inf")
    if not z_loss:
        loss = F.cross_entropy(logits, targets.clamp(min=1), reduction="none")
        return _weighted_sum(loss, weight)
    lse = torch.logsumexp(logits, dim=1)
    loss = lse - logits.gather(1, targets.clamp(min=1)[:, None]).squeeze(1) + z_loss * lse.square()
    return _weighted_sum(loss, weight)


def sampled_softmax(
    hidden: torch.Tensor,
    pos_vecs: torch.Tensor,
    targets: torch.Tensor,
    neg_ids: torch.Tensor,
    neg_vecs: torch.Tensor,
    weight: torch.Tensor | None = None,
    pos_logq: torch.Tensor | None = None,
    neg_logq: torch.Tensor | None = None,
    temperature: float = 1.0,
    fp32: bool = True,
    z_loss: float = 0.0,
) -> torch.Tensor:
    """Sampled softmax with logQ correction and accidental-hit masking.

    hidden, pos_vecs: [N, d]; targets: int64[N]. Shared negatives: neg_ids int64[K], neg_vecs [K, d],
    neg_logq [K] (one matmul). Per-sample negatives: neg_ids [N, K], neg_vecs [N, K, d], neg_logq
    [N, K]. Negatives with id 0 (invalid, e.g. padding drawn by the in-batch sampler) are masked too.
    """
    pos = _dots(hidden, pos_vecs, fp32) / temperature  # [N]
    neg = _scores(hidden, neg_vecs, fp32) / temperature  # [N, K], shared or per-sample negatives
    if pos_logq is not None:
        pos = pos - pos_logq.float()
    if neg_logq is not None:
        neg = neg - neg_logq.float()
    hits = (neg_ids == targets[:, None]) | (neg_ids == 0)
    neg = neg.masked_fill_(hits, _MASKED)  # in place: `neg` is a fresh [N, K] float32 tensor
    # log(e^pos + Σ e^neg) - pos without materialising the [N, K+1] concatenation
    lse = torch.logaddexp(pos, torch.logsumexp(neg, dim=1))
    loss = lse - pos + z_loss * lse.square() if z_loss else lse - pos
    return _weighted_sum(loss, weight)


def bce_one_negative(
    hidden: torch.Tensor,
    pos_vecs: torch.Tensor,
    neg_vecs: torch.Tensor,
    weight: torch.Tensor | None = None,
    fp32: bool = True,
) -> torch.Tensor:
    """Original SASRec loss: -log σ(<h,pos>) - log(1 - σ(<h,neg>)), one negative per target.
    hidden, pos_vecs, neg_vecs: [N, d]."""
    pos = _dots(hidden, pos_vecs, fp32)
    neg = _dots(hidden, neg_vecs, fp32)
    loss = F.softplus(-pos) + F.softplus(neg)
    return _weighted_sum(loss, weight)


def _weighted_sum(loss: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return loss.sum() if weight is None else (loss * weight).sum()
