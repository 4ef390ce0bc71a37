"""Negative samplers for sampled softmax, each returning ids and the log-probability used for logQ.

Popularity^α is the paper's choice (its "smoothed popularity"); uniform and in-batch are the
usual alternatives. Sampling is done on the training device with an explicit `torch.Generator`
(inverse-CDF via `searchsorted`, no host sync), so runs are reproducible and resumable: the
generator state is saved in `state.pt`.

`log_q(ids)` is the log-probability of drawing `ids` in one draw; the constant log K of K draws
shifts every logit equally and cancels in the softmax.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import torch


class NegativeSampler(Protocol):
    logp: torch.Tensor
    """float32[n_items+1]: log q(item), row 0 (padding) finite."""

    def sample(
        self, shape: tuple[int, ...], generator: torch.Generator, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids int64[shape], log q float32[shape])."""
        ...

    def log_q(self, ids: torch.Tensor) -> torch.Tensor: ...


class TableSampler:
    """Draw items 1..I from a fixed distribution given by non-negative weights [I+1] (index 0 unused)."""

    def __init__(self, weights: np.ndarray, device: str | torch.device = "cpu") -> None:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        w[0] = 0.0
        if float(w.sum()) <= 0:
            raise ValueError("sampler weights sum to zero")
        p = w / w.sum()
        logp = torch.log(p).float()
        logp[0] = 0.0  # padding: never drawn; finite so padded target slots stay finite
        self.logp = logp.to(device)
        cdf = torch.cumsum(p, 0)
        cdf[-1] = 1.0
        self.cdf = cdf.to(device)

    def sample(
        self, shape: tuple[int, ...], generator: torch.Generator, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.rand(shape, generator=generator, device=self.cdf.device, dtype=torch.float64)
        ids = torch.searchsorted(self.cdf, u, right=True).clamp_(1, len(self.cdf) - 1)
        return ids, self.logp[ids]

    def log_q(self, ids: torch.Tensor) -> torch.Tensor:
        return self.logp[ids]


def popularity_sampler(
    counts: np.ndarray, alpha: float = 1.0, device: str | torch.device = "cpu"
) -> TableSampler:
    """q(i) ∝ (count_i + 1)^α over items 1..I (+1 so items unseen in training can be drawn)."""
    w = (np.asarray(counts, dtype=np.float64) + 1.0) ** alpha
    return TableSampler(w, device)


def uniform_sampler(n_items: int, device: str | torch.device = "cpu") -> TableSampler:
    return TableSampler(np.ones(n_items + 1), device)


class InBatchSampler:
    """Negatives = targets at uniformly drawn positions of the current batch (padding → id 0,
    masked by the loss). The draw probability of an item is ≈ its training frequency, used for logQ."""

    def __init__(self, counts: np.ndarray, device: str | torch.device = "cpu") -> None:
        c = torch.as_tensor(np.asarray(counts, dtype=np.float64)) + 1e-12
        self.logp = torch.log(c / c[1:].sum()).float().to(device)

    def sample(
        self, shape: tuple[int, ...], generator: torch.Generator, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if targets is None:
            raise ValueError("the in-batch sampler needs the batch targets")
        flat = targets.reshape(-1)
        pos = torch.randint(0, flat.numel(), shape, generator=generator, device=flat.device)
        ids = flat[pos]
        return ids, self.logp[ids]

    def log_q(self, ids: torch.Tensor) -> torch.Tensor:
        return self.logp[ids]


def make_sampler(
    kind: Literal["popularity", "uniform", "in_batch"],
    counts: np.ndarray,
    alpha: float = 1.0,
    device: str | torch.device = "cpu",
) -> NegativeSampler:
    """Pick a sampler by config name; `counts` = training popularity int64[I+1]."""
    if kind == "popularity":
        return popularity_sampler(counts, alpha, device)
    if kind == "uniform":
        return uniform_sampler(len(counts) - 1, device)
    if kind == "in_batch":
        return InBatchSampler(counts, device)
    raise ValueError(f"unknown sampler {kind!r}")
