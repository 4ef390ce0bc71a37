"""What the fitted laws are for: envelopes, the compute-optimal N*(C) and D*(C), iso-FLOP
profiles, and the interpolation check (largest-compute runs held out).

Compute-optimal allocation (Hoffmann et al. 2022, approach 3) needs a relation between compute
and (N, D). We take it from the runs rather than assuming the textbook C = 6·N·D: the training
FLOPs per target of a text-tower recommender include the item encoder and the negatives, so we
fit `C = k·N^γ·D` by least squares of log(C/D) on log N over the sweep's runs (γ = 1, k = 6 for a
plain decoder). Minimising L(N, D) = E + A/N^α + B/D^β subject to that constraint gives

    N*(C) = G·(C/k)^(β/(α+γβ)),   G = (α·A / (γ·β·B))^(1/(α+γβ)),   D*(C) = C / (k·N*^γ)

so the exponents are a = β/(α+γβ) and b = 1 − γ·a (a + b = 1 when γ = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalerec.scaling.laws import LawFit, fit_joint


@dataclass
class FlopsRelation:
    """`C ≈ k·N^γ·D` fitted on the runs; r2 is the log-space fit quality."""

    k: float
    gamma: float
    r2: float

    def to_dict(self) -> dict:
        return {"form": "C = k·N^gamma·D", "k": self.k, "gamma": self.gamma, "r2_log": self.r2}


def fit_flops_relation(n_params: np.ndarray, data: np.ndarray, flops: np.ndarray) -> FlopsRelation:
    """Least squares of log(C/D) = log k + γ·log N; n_params non-embedding, data = targets seen."""
    ln = np.log(np.asarray(n_params, dtype=float))
    lf = np.log(np.asarray(flops, dtype=float) / np.asarray(data, dtype=float))
    if np.ptp(ln) == 0:
        return FlopsRelation(k=float(np.exp(lf.mean() - ln.mean())), gamma=1.0, r2=float("nan"))
    gamma, lk = np.polyfit(ln, lf, 1)
    resid = lf - (lk + gamma * ln)
    r2 = 1.0 - float(np.sum(resid**2) / max(np.sum((lf - lf.mean()) ** 2), 1e-300))
    return FlopsRelation(k=float(np.exp(lk)), gamma=float(gamma), r2=r2)


def optimal_exponents(fit: LawFit, rel: FlopsRelation) -> tuple[float, float]:
    """(a, b) in N*(C) ∝ C^a, D*(C) ∝ C^b for the joint law `fit` (names ("N", "D"))."""
    alpha, beta = fit.alpha
    denom = alpha + rel.gamma * beta
    if denom <= 0 or beta <= 0 or alpha <= 0:
        return float("nan"), float("nan")
    a = beta / denom
    return a, 1.0 - rel.gamma * a


def optimal_allocation(fit: LawFit, rel: FlopsRelation, flops: np.ndarray) -> dict[str, np.ndarray]:
    """N*(C), D*(C) and the predicted metric there, for an array of compute budgets [FLOPs]."""
    c = np.asarray(flops, dtype=float)
    alpha, beta = fit.alpha
    big_a, big_b = fit.A
    a, _ = optimal_exponents(fit, rel)
    if not np.isfinite(a):
        nan = np.full_like(c, np.nan)
        return {"flops": c, "n": nan, "d": nan, "metric": nan}
    g = (alpha * big_a / (rel.gamma * beta * big_b)) ** (1.0 / (alpha + rel.gamma * beta))
    n = g * (c / rel.k) ** a
    d = c / (rel.k * n**rel.gamma)
    return {"flops": c, "n": n, "d": d, "metric": fit.predict(n, d)}


def frontier(flops: np.ndarray, y: np.ndarray, lower_is_better: bool = True) -> np.ndarray:
    """Indices of the runs on the compute-efficient envelope: sorted by FLOPs, each one better
    than every cheaper run (the paper's "optimal envelope")."""
    order = np.argsort(np.asarray(flops, dtype=float), kind="stable")
    best = np.inf
    keep = []
    for i in order:
        v = y[i] if lower_is_better else -y[i]
        if v < best:
            best = v
            keep.append(int(i))
    return np.asarray(keep, dtype=int)


def best_per_group(groups: np.ndarray, y: np.ndarray, lower_is_better: bool = True) -> np.ndarray:
    """Index of the best run for each distinct value of `groups` (e.g. best over D at each N)."""
    groups = np.asarray(groups)
    out = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        vals = y[idx] if lower_is_better else -y[idx]
        out.append(int(idx[np.argmin(vals)]))
    return np.asarray(out, dtype=int)


def extrapolation_check(
    n_params: np.ndarray,
    data: np.ndarray,
    flops: np.ndarray,
    y: np.ndarray,
    higher_is_better: bool = False,
    cutoff: float | None = None,
    holdout_frac: float = 0.2,
) -> dict:
    """Fit the joint law on runs with FLOPs < cutoff, predict the runs at or above it.

    This is an interpolation check: on a grid of sizes × data sizes the largest-compute runs lie
    inside the fitted N and D ranges (issue 18). `scaling.extrapolate` holds the true test.

    cutoff defaults to the FLOPs of the run at the (1 − holdout_frac) quantile, so the largest
    ~20% of runs by compute are held out. Relative error = |pred − y| / |y| on the metric itself
    (for higher-is-better metrics the error-form law is mapped back to y = 1 − err).
    """
    c = np.asarray(flops, dtype=float)
    if cutoff is None:
        n_hold = max(1, int(round(holdout_frac * c.size)))
        cutoff = float(np.sort(c)[-n_hold])
    train = c < cutoff
    test = ~train
    target = 1.0 - y if higher_is_better else y
    if train.sum() < 6 or test.sum() == 0:
        return {
            "cutoff_flops": cutoff,
            "skipped": f"need >= 6 runs below the cutoff and >= 1 above "
            f"(have {int(train.sum())} and {int(test.sum())})",
        }
    fit = fit_joint(n_params[train], data[train], target[train])
    pred = fit.predict(n_params[test], data[test])
    if higher_is_better:
        pred = 1.0 - pred
    rel = np.abs(pred - y[test]) / np.abs(y[test])
    return {
        "cutoff_flops": cutoff,
        "n_fit": int(train.sum()),
        "n_heldout": int(test.sum()),
        "fit": fit.to_dict(),
        "heldout_index": np.flatnonzero(test).tolist(),
        "predicted": pred.tolist(),
        "actual": y[test].tolist(),
        "rel_error": rel.tolist(),
        "mean_rel_error": float(rel.mean()),
        "max_rel_error": float(rel.max()),
    }
