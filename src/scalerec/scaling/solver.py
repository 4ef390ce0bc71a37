"""Batched minimisation of the log-space Huber objective of `scaling.laws`, from every start at once.

Why not one scipy call per start: a joint fit has 192 grid starts and a bootstrap 100 refits of
them; at ~5 ms per L-BFGS-B call that is ~100 s per law, so the old code refined only the 4 best
starts by initial objective — and the answer then depended on which 4 (issue 18: a refit of the
committed Beauty sweep gave alpha_N 0.74 instead of 3.92). Here every start of every problem
(bootstrap replicate, profile point) is refined together as one stack of small Levenberg–Marquardt
problems in numpy, so refining all of them costs tens of milliseconds.

Method (per problem, vectorised over the stack): iteratively reweighted Gauss–Newton for the Huber
loss (weights min(1, δ/|r|) majorise it, so the gradient is exact), Levenberg–Marquardt damping on
the diagonal, steps accepted only when the true objective decreases, exponents kept in
[0, max_exponent] and E >= 0 by projection with an active set (a coordinate on its bound whose gradient
points outward is held there), and coordinates in `fixed` never moved (profile likelihood).
Deterministic: no randomness, ties between starts go to the lowest start index.

Bootstrap replicates are fits with integer case weights (resampling runs with replacement is the
same as weighting each run by how often it was drawn), so all replicates share one design matrix.
"""

from __future__ import annotations

import numpy as np

MAX_ELEMENTS = 4_000_000
"""Problems × points per chunk: keeps the [M, n, p] Jacobian near 100 MB at p = 5 (float64)."""


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber value of residuals, elementwise: r²/2 inside ±δ, δ·(|r| − δ/2) outside."""
    absr = np.abs(r)
    return np.where(absr <= delta, 0.5 * r * r, delta * (absr - 0.5 * delta))


def predict_log(theta: np.ndarray, logx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log(E + Σ exp(a_i − α_i·log x_i)) and the pieces of its Jacobian.

    theta: [M, 1 + 2k] = [E, a_1, α_1, …]; logx: [k, n]. Returns the log prediction [M, n], the
    share of E in the sum [M, n] divided by E (d pred / dE) and the share of each term [M, k, n].
    """
    z = theta[:, 1::2, None] - theta[:, 2::2, None] * logx[None]  # [M, k, n]
    with np.errstate(divide="ignore"):
        log_e = np.log(theta[:, :1])  # -inf at E = 0
    shift = np.maximum(np.maximum(z.max(axis=1), log_e), -700.0)  # [M, n], keeps exp() finite
    terms = np.exp(z - shift[:, None])
    inv_scale = np.exp(-shift)
    total = np.exp(log_e - shift) + terms.sum(axis=1)
    return shift + np.log(total), inv_scale / total, terms / total[:, None]


def objective(theta: np.ndarray, logx: np.ndarray, logy: np.ndarray, weights: np.ndarray, delta: float):
    """Σ_j w_j·huber(pred_j − log y_j) per problem: theta [M, p], weights [M, n] → [M]."""
    pred = predict_log(theta, logx)[0]
    return (weights * huber(pred - logy[None], delta)).sum(axis=1)


def _jacobian(d_e: np.ndarray, shares: np.ndarray, logx: np.ndarray) -> np.ndarray:
    """d pred / d theta: [M, n, p] from `predict_log`'s pieces."""
    m, k, n = shares.shape
    jac = np.empty((m, n, 1 + 2 * k))
    jac[:, :, 0] = d_e
    jac[:, :, 1::2] = np.swapaxes(shares, 1, 2)
    jac[:, :, 2::2] = -np.swapaxes(shares * logx[None], 1, 2)
    return jac


def _step(theta, logx, logy, weights, delta, lam, bounded, lo, hi, fixed):
    """One damped, projected IRLS–Gauss–Newton step for every problem; returns the trial theta."""
    pred, d_e, shares = predict_log(theta, logx)
    r = pred - logy[None]
    omega = weights * np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))
    jac = _jacobian(d_e, shares, logx)
    jac_t = np.swapaxes(jac, 1, 2)
    grad = np.matmul(jac_t, (omega * r)[:, :, None])[:, :, 0]
    hess = np.matmul(jac_t * omega[:, None, :], jac)
    at_lo = bounded[None] & (theta <= lo[None]) & (grad > 0)
    at_hi = bounded[None] & (theta >= hi[None]) & (grad < 0)
    hold = at_lo | at_hi | fixed[None]
    free = ~hold
    hess = hess * (free[:, :, None] & free[:, None, :])
    diag = np.einsum("mpp->mp", hess)
    damped = hess + (lam[:, None] * (diag + 1e-9) + hold)[:, :, None] * np.eye(theta.shape[1])[None]
    rhs = np.where(free, -grad, 0.0)
    step = np.linalg.solve(damped, rhs[:, :, None])[:, :, 0]
    return np.clip(theta + step, lo[None], hi[None])


def _solve_chunk(theta, logx, logy, weights, delta, max_exponent, fixed, max_iter, tol):
    p = theta.shape[1]
    bounded = np.zeros(p, dtype=bool)
    bounded[0] = bounded[2::2] = True  # E >= 0, 0 <= alpha_i <= max_exponent
    lo = np.where(bounded, 0.0, -np.inf)
    hi = np.full(p, np.inf)
    hi[2::2] = max_exponent
    theta = np.clip(theta, lo[None], hi[None])
    obj = objective(theta, logx, logy, weights, delta)
    lam = np.full(theta.shape[0], 1e-3)
    active = np.ones(theta.shape[0], dtype=bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        trial = _step(theta[idx], logx, logy, weights[idx], delta, lam[idx], bounded, lo, hi, fixed)
        new = objective(trial, logx, logy, weights[idx], delta)
        ok = np.isfinite(new) & (new <= obj[idx])
        gain = obj[idx] - np.where(ok, new, obj[idx])
        theta[idx[ok]] = trial[ok]
        obj[idx[ok]] = new[ok]
        lam[idx] = np.where(ok, np.maximum(lam[idx] / 3.0, 1e-12), lam[idx] * 4.0)
        done = (ok & (gain <= tol * (1.0 + obj[idx]))) | (lam[idx] > 1e12)
        active[idx[done]] = False
    return obj, theta


def solve(
    starts: np.ndarray,
    logx: np.ndarray,
    logy: np.ndarray,
    delta: float,
    max_exponent: float,
    weights: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    max_iter: int = 300,
    tol: float = 1e-13,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine every start for every weight vector; return (loss [B, S], theta [B, S, p]).

    starts: [S, p] or [B, S, p] (per-problem starts, e.g. a profile's fixed values);
    logx: [k, n]; logy: [n]; weights: [B, n] case weights (None = one problem, all ones);
    fixed: [p] bool, coordinates held at their start value.
    """
    weights = np.ones((1, logy.size)) if weights is None else np.asarray(weights, dtype=float)
    b = weights.shape[0]
    starts = np.asarray(starts, dtype=float)
    if starts.ndim == 2:
        starts = np.broadcast_to(starts[None], (b, *starts.shape))
    s, p = starts.shape[1:]
    fixed = np.zeros(p, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    # Centre log x: a_i' = a_i − α_i·mean(log x_i) decorrelates the a_i and α_i columns of the
    # Jacobian (log N spans ~10–17, centred ±3), which is what makes Gauss–Newton converge here.
    centre = logx.mean(axis=1)
    logx = logx - centre[:, None]
    flat_theta = starts.reshape(b * s, p).copy()
    flat_theta[:, 1::2] -= flat_theta[:, 2::2] * centre[None]
    flat_w = np.repeat(weights, s, axis=0)
    losses = np.empty(b * s)
    chunk = max(1, MAX_ELEMENTS // max(1, logy.size * p))
    with np.errstate(all="ignore"):  # overflowing trial steps are rejected, not reported
        for lo in range(0, b * s, chunk):
            sl = slice(lo, lo + chunk)
            losses[sl], flat_theta[sl] = _solve_chunk(
                flat_theta[sl], logx, logy, flat_w[sl], delta, max_exponent, fixed, max_iter, tol
            )
    flat_theta[:, 1::2] += flat_theta[:, 2::2] * centre[None]
    losses = np.where(np.isfinite(losses) & np.isfinite(flat_theta).all(axis=1), losses, np.inf)
    return losses.reshape(b, s), flat_theta.reshape(b, s, p)


TIE_RTOL = 1e-9
"""Starts whose objective is within this relative distance of the best are ties (lowest index wins)."""


def best(losses: np.ndarray, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best start per problem (lowest loss, lowest index on ties): ([B], [B, p]).

    Why ties within `TIE_RTOL` and not exact ones: on a flat ridge many starts end within 1e-12 of
    one objective at very different exponents, and which is lowest then depends on the last bits of
    the arithmetic (BLAS threads, the CPU's vector width). An exact argmin made committed fits.json
    files refit differently on another machine (world_v2's NDCG alpha_N interval moved from
    [0, 2.1] to [0, 0] on the 2-core CI-like VM, 2026-12-06); the lowest index among near-ties does not
    depend on those bits."""
    low = np.min(losses, axis=1, keepdims=True)
    tied = losses <= low + TIE_RTOL * np.abs(low) + 1e-300
    i = np.argmax(tied, axis=1)  # first True: the lowest index among the ties
    rows = np.arange(losses.shape[0])
    return losses[rows, i], thetas[rows, i]
