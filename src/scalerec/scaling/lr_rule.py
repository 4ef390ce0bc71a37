"""The LR a held-out size trains at, fitted on the validation LR searches of the sizes below it.

Issue 18's extrapolation test trains a size beyond the fitted range (world_v6's m2) once, at "the LR rule
fitted on the sizes below". Setting that LR by hand from a glance at the winners is where an extrapolation
test quietly becomes a tuned one, or an untuned one (world_v6's m2 named no LR at all until 2026-12-07). The
rule here is written down instead: per fitted size, the LR optimum of its search at the largest D it reached,
then log LR = a + b·log N by least squares, evaluated at the held-out N.

Per size the optimum is the vertex of a parabola through the validation losses of the three LRs around the
grid's winner (log LR on the x axis), averaged over the seeds that searched: the grid is ×3 apart, so the
winner alone moves the rule by whole grid steps, and the vertex is the usual sub-grid estimate. A winner at
the grid's edge has no vertex: its point is the winner itself, flagged, and the rule says it is then a bound,
not an estimate, on that side. A vertex is clamped to the winner's neighbours (a flat or noisy parabola
cannot put it outside the LRs that ran).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SizePoint:
    """One fitted size's LR optimum."""

    size: str
    n: int
    """Non-embedding parameters."""
    subset: str
    """The D point it was read at (the largest the size's search reached)."""
    lr_winner: float
    """The grid LR with the lowest seed-mean validation loss."""
    lr_opt: float
    """The parabola's vertex (the winner where there is none)."""
    at_edge: bool
    """The winner is the grid's lowest or highest LR."""


@dataclass(frozen=True)
class LrRule:
    """log LR = intercept + slope·log N, fitted on `points`."""

    points: list[SizePoint]
    slope: float
    intercept: float

    def predict(self, n: float) -> float:
        return math.exp(self.intercept + self.slope * math.log(n))

    def to_dict(self) -> dict[str, Any]:
        return {"slope": self.slope, "intercept": self.intercept, "points": [asdict(p) for p in self.points]}


def _vertex(lrs: list[float], losses: list[float], i: int) -> float:
    """LR at the minimum of the parabola through points i-1, i, i+1 (log LR), clamped to [i-1, i+1]."""
    x = np.log(np.asarray(lrs[i - 1 : i + 2], dtype=float))
    y = np.asarray(losses[i - 1 : i + 2], dtype=float)
    a, b, _ = np.polyfit(x, y, 2)
    if a <= 0:  # not convex through these three: no better estimate than the winner
        return lrs[i]
    return float(math.exp(min(max(-b / (2 * a), x[0]), x[2])))


def size_point(size: str, rows: list[dict[str, Any]]) -> SizePoint | None:
    """The LR optimum of one size at the largest D where it ran >= 2 LRs (None if it never did)."""
    by_subset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_subset[str(r["subset"])].append(r)
    searched = {s: rs for s, rs in by_subset.items() if len({float(r["lr"]) for r in rs}) >= 2}
    if not searched:
        return None
    subset = max(searched, key=lambda s: max(float(r.get("targets_seen") or 0) for r in searched[s]))
    group = searched[subset]
    # seeds that searched: those that ran more than one LR at this D (extra seeds run the centre only)
    seeds_lrs: dict[Any, set[float]] = defaultdict(set)
    for r in group:
        seeds_lrs[r.get("seed")].add(float(r["lr"]))
    search_seeds = {s for s, lrs in seeds_lrs.items() if len(lrs) >= 2}
    losses: dict[float, list[float]] = defaultdict(list)
    for r in group:
        loss = r.get("valid_loss")
        if r.get("seed") in search_seeds and loss is not None and math.isfinite(loss):
            losses[float(r["lr"])].append(float(loss))
    lrs = sorted(losses)
    if len(lrs) < 2:
        return None
    mean = [float(np.mean(losses[lr])) for lr in lrs]
    i = int(np.argmin(mean))
    at_edge = i in (0, len(lrs) - 1)
    lr_opt = lrs[i] if at_edge else _vertex(lrs, mean, i)
    n = int(group[0]["n_params_non_embedding"])
    return SizePoint(size=size, n=n, subset=subset, lr_winner=lrs[i], lr_opt=lr_opt, at_edge=at_edge)


def fit_lr_rule(rows: list[dict[str, Any]], encoder: str | None = None) -> LrRule:
    """The rule over every fitted (not held-out) size of a v2 results table with an LR search."""
    ok = [
        r for r in rows
        if r.get("status") == "ok" and not r.get("holdout") and r.get("n_params_non_embedding")
        and (encoder is None or r.get("encoder") == encoder)
    ]
    by_size: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        by_size[str(r["size"])].append(r)
    points = [p for s, rs in by_size.items() if (p := size_point(s, rs)) is not None]
    points.sort(key=lambda p: p.n)
    if len({p.n for p in points}) < 2:
        raise ValueError(f"an LR rule needs >= 2 sizes with an LR search; found {[p.size for p in points]}")
    slope, intercept = np.polyfit(np.log([p.n for p in points]), np.log([p.lr_opt for p in points]), 1)
    return LrRule(points=points, slope=float(slope), intercept=float(intercept))
