"""Is a fitted exponent a measurement or an artefact? Any one of these tests flags it "not identified".

1. Bootstrap: the estimate or its 95% interval reaches the fitter's bounds (0 or `MAX_EXPONENT`).
   Or the interval spans more than `MAX_CI_RATIO` (a decade): world_v5's NDCG alpha_N of
   1.77 [0.0095, 1.95] passed the bound and profile tests, yet the runs allow anything from almost
   no size effect to a steep one. (An estimate outside its own percentile interval is not a test:
   a misspecified or biased fit shifts the bootstrap distribution while still measuring the
   exponent, e.g. a univariate L(D) on a grid of sizes, 0.355 against [0.349, 0.353].)
2. Profile: the profile objective of the exponent (`laws.profile`, every other coefficient
   re-optimised at each fixed value) is flat. Read as a likelihood ratio with the noise variance
   estimated from the fit's residuals (σ² = 2·loss/(n − p): the Huber loss is r²/2 for residuals
   inside δ, which is where seed noise of ~0.2–1% in log space falls), the 95% profile interval is
   {α : 2·(profile(α) − loss)/σ² ≤ 3.84}. If that interval reaches either end of [0, MAX_EXPONENT]
   the data cannot tell this exponent from "no effect" (α → 0 merges the term into E; α → MAX makes
   it vanish), which is the flat ridge issue 18 found in the committed synthetic fit (189 of 192
   starts within 1% of the best objective with alpha_N anywhere in [0, 4]). Outside δ the Huber loss
   grows only linearly, so this test errs towards flagging.

A compute-optimal allocation divides by both exponents, so it is only reported when both pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from scalerec.scaling import laws

MAX_CI_RATIO = 10.0
"""An exponent whose 95% bootstrap interval spans more than this factor (upper / lower end) is not
measured: at a decade the same runs fit an effect ten times smaller or larger."""
CHI2_1_95 = 3.841
"""95% quantile of χ² with one degree of freedom (profile-likelihood interval)."""
PROFILE_GRID = np.array([0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.25, 1.5, 2, 2.5, 3, 3.5, 4.0])
"""Exponent values the profile is evaluated at: fine where measured exponents live (0.05–0.6),
coarse towards the bound; both ends are the bounds of the fitter."""


def profile_check(prof: dict[str, list[float]], loss: float, n_points: int, n_params: int) -> dict[str, Any]:
    """Profile interval and flatness of one exponent from `laws.profile` output and the best loss."""
    grid = np.asarray(prof["grid"], dtype=float)
    values = np.asarray(prof["loss"], dtype=float)
    best = min(loss, float(np.min(values)))
    sigma2 = 2.0 * best / max(n_points - n_params, 1)
    deviance = 2.0 * (values - best) / max(sigma2, 1e-300)
    inside = grid[deviance <= CHI2_1_95]
    lo, hi = (float(inside.min()), float(inside.max())) if inside.size else (float("nan"), float("nan"))
    return {
        **prof,
        "deviance": deviance.tolist(),
        "interval95": [lo, hi],
        "flat": bool(inside.size and (lo <= grid[0] or hi >= grid[-1])),
    }


def exponent_reasons(value: float, ci: Sequence[float] | None, prof: dict[str, Any] | None) -> list[str]:
    """Why an exponent is not identified, in words (empty when it is)."""
    reasons = []
    if value >= 0.99 * laws.MAX_EXPONENT or value <= 1e-3:
        reasons.append(f"the estimate {value:.3g} sits on the fitter's bound [0, {laws.MAX_EXPONENT:g}]")
    finite = ci is not None and len(ci) == 2 and bool(np.all(np.isfinite(ci)))
    if finite and ci is not None and (ci[1] >= 0.99 * laws.MAX_EXPONENT or ci[0] <= 1e-3):
        reasons.append(f"its 95% bootstrap interval [{ci[0]:.3g}, {ci[1]:.3g}] reaches a bound")
    elif finite and ci is not None and ci[1] > MAX_CI_RATIO * ci[0]:
        reasons.append(
            f"its 95% bootstrap interval [{ci[0]:.3g}, {ci[1]:.3g}] "
            f"spans more than a factor of {MAX_CI_RATIO:g}"
        )
    if prof is not None and prof.get("flat"):
        lo, hi = prof["interval95"]
        reasons.append(
            f"its profile likelihood is flat: every value in [{lo:.2g}, {hi:.2g}] fits within the noise"
        )
    return reasons


def identification(
    entry: dict[str, Any], profiles: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Per exponent of a law's `to_dict()` entry: {"identified": bool, "reasons": [...]}."""
    coef, ci = entry.get("coef", {}), entry.get("ci95", {})
    out = {}
    for name, value in coef.items():
        if name.startswith("alpha"):
            reasons = exponent_reasons(value, ci.get(name), (profiles or {}).get(name))
            out[name] = {"identified": not reasons, "reasons": reasons}
    return out


def profiles(
    xs: Sequence[np.ndarray], y: np.ndarray, fit: laws.LawFit, precision: np.ndarray | None = None
) -> dict[str, dict[str, Any]]:
    """Profile check of every exponent of `fit` (fitted on xs, y with per-run `precision`)."""
    n_params = 1 + 2 * len(fit.names)
    return {
        f"alpha_{name}": profile_check(
            laws.profile(xs, y, i, PROFILE_GRID, precision=precision), fit.loss, fit.n_points, n_params
        )
        for i, name in enumerate(fit.names)
    }


def unidentified(ident: dict[str, dict[str, Any]]) -> list[str]:
    """Names of the exponents that failed either test."""
    return [name for name, v in ident.items() if not v["identified"]]


def floor_at_bound(law: dict[str, Any]) -> str | None:
    """Words for a law whose floor E the fitter put on its lower bound 0 while some exponent passed the
    tests above, or None. Why: with E = 0 the law is a floorless power law, and the "identified"
    exponent is the log-log slope of the fitted range rather than the approach to an irreducible loss
    (a cross-entropy over a catalog cannot reach 0; pooled_v3's ID loss fit: E = 0 [0, 0], alpha_D 0.072,
    on a curve that drops 1.4 nats in its last half-decade). Not a flag on the exponent: the slope is
    measured, but it does not extrapolate. Not stored in fits.json, so committed fits stay as they are."""
    coef, ident = law.get("coef", {}), law.get("identification", {})
    if "E" not in coef or not any(v["identified"] for v in ident.values()) or coef["E"] > 0.0:
        return None
    ci = law.get("ci95", {}).get("E", [float("nan")] * 2)
    names = ", ".join(n for n, v in ident.items() if v["identified"])
    return (
        f"the floor E sits on its bound 0 (95% CI [{ci[0]:.3g}, {ci[1]:.3g}]), so {names} is the slope of a "
        "power law without a floor over the fitted range, not an approach to an irreducible value: "
        "do not extrapolate it"
    )
