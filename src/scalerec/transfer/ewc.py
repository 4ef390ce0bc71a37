"""Elastic weight consolidation: keep fine-tuned weights close to the pretrained ones where it matters.

Kirkpatrick et al. (PNAS 2017), as used in the paper's fine-tuning study: a diagonal Fisher
information F is estimated on the *pretraining* data at the pretrained weights θ*, and fine-tuning
adds `λ · Σ_i F_i (θ_i − θ*_i)²` to its loss (the paper's form, without the conventional ½), with
λ = 100 and 3,000 batches in the paper. We use the empirical Fisher — the squared gradient of the
training loss per batch, averaged over batches — which needs no sampling from the model and is what
their code computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from scalerec.model.recommender import SequentialRecommender


def diagonal_fisher(
    model: SequentialRecommender,
    batches: Iterable[Any],
    loss_fn: Callable[[SequentialRecommender, Any], torch.Tensor],
    n_batches: int,
) -> dict[str, torch.Tensor]:
    """Empirical diagonal Fisher: mean over `n_batches` batches of (∂ loss / ∂θ)², per parameter.

    `loss_fn(model, batch) -> scalar` is the pretraining loss. Parameters without a gradient
    (unused in the loss) get zeros. Returns `{name: tensor shaped like the parameter}` (float32).
    """
    if n_batches < 1:
        raise ValueError(f"n_batches must be >= 1, got {n_batches}")
    was_training = model.training
    model.train()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    seen = 0
    for batch in islice(batches, n_batches):
        model.zero_grad(set_to_none=True)
        loss_fn(model, batch).backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach().float() ** 2
        seen += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    if seen == 0:
        raise ValueError("no batches to estimate the Fisher information from")
    return {n: f / seen for n, f in fisher.items()}


class EWCPenalty(nn.Module):
    """`λ · Σ F (θ − θ*)²` over the parameters present in `fisher` (anchor = their current values)."""

    def __init__(self, model: nn.Module, fisher: dict[str, torch.Tensor], lam: float) -> None:
        super().__init__()
        if lam < 0:
            raise ValueError(f"EWC lambda must be >= 0, got {lam}")
        self.lam = float(lam)
        named = dict(model.named_parameters())
        missing = set(fisher) - set(named)
        if missing:
            raise ValueError(f"Fisher names parameters the model lacks: {sorted(missing)[:3]}")
        self.names = sorted(fisher)
        self.anchor = {n: named[n].detach().clone() for n in self.names}
        self.fisher = {n: fisher[n].to(named[n].device) for n in self.names}

    def forward(self, model: nn.Module) -> torch.Tensor:
        named = dict(model.named_parameters())
        total = None
        for n in self.names:
            p = named[n]
            if not p.requires_grad:
                continue
            term = (self.fisher[n] * (p.float() - self.anchor[n].float()) ** 2).sum()
            total = term if total is None else total + term
        if total is None:
            return torch.zeros((), device=next(model.parameters()).device)
        return self.lam * total
