"""EWC: the penalty is zero at the anchor, its gradient is 2λF(θ−θ*), and the Fisher is positive."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scalerec.transfer.ewc import EWCPenalty, diagonal_fisher


def _setup() -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    batches = [(torch.randn(16, 4), torch.randint(0, 3, (16,))) for _ in range(5)]
    return model, batches


def _loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def test_fisher_is_mean_squared_gradient_and_positive() -> None:
    model, batches = _setup()
    fisher = diagonal_fisher(model, iter(batches), _loss, n_batches=3)
    assert all(p.grad is None for p in model.parameters())
    assert set(fisher) == {n for n, _ in model.named_parameters()}
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for batch in batches[:3]:
        model.zero_grad()
        _loss(model, batch).backward()
        for n, p in model.named_parameters():
            expected[n] += p.grad**2 / 3
    for n, f in fisher.items():
        torch.testing.assert_close(f, expected[n])
        assert (f >= 0).all()
    assert sum(f.sum() for f in fisher.values()) > 0


def test_fisher_needs_batches() -> None:
    model, _ = _setup()
    with pytest.raises(ValueError):
        diagonal_fisher(model, iter([]), _loss, n_batches=2)


def test_penalty_zero_at_anchor_and_gradient_matches_formula() -> None:
    model, batches = _setup()
    fisher = diagonal_fisher(model, iter(batches), _loss, n_batches=5)
    ewc = EWCPenalty(model, fisher, lam=100.0)
    assert ewc(model).item() == 0.0
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    penalty = ewc(model)
    assert penalty.item() > 0
    model.zero_grad()
    penalty.backward()
    for n, p in model.named_parameters():
        expected = 2 * 100.0 * fisher[n] * (p.detach() - ewc.anchor[n])
        torch.testing.assert_close(p.grad, expected)
    manual = sum(
        (fisher[n] * (p.detach() - ewc.anchor[n]) ** 2).sum() for n, p in model.named_parameters()
    )
    assert penalty.item() == pytest.approx(100.0 * manual.item(), rel=1e-5)


def test_penalty_skips_frozen_parameters_and_pulls_back() -> None:
    model, batches = _setup()
    fisher = diagonal_fisher(model, iter(batches), _loss, n_batches=5)
    ewc = EWCPenalty(model, fisher, lam=1e4)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    start = ewc(model).item()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    for _ in range(20):
        opt.zero_grad()
        ewc(model).backward()
        opt.step()
    assert ewc(model).item() < start
    for p in model.parameters():
        p.requires_grad_(False)
    assert ewc(model).item() == 0.0


def test_negative_lambda_rejected() -> None:
    model, batches = _setup()
    fisher = diagonal_fisher(model, iter(batches), _loss, n_batches=1)
    with pytest.raises(ValueError):
        EWCPenalty(model, fisher, lam=-1)
