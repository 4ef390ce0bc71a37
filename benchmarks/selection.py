"""Configuration selection for `benchmarks/accuracy.py`: on validation only, never on test.

A recipe chosen by ranking configurations on test NDCG reports an optimistic test figure (the
Sports and Beauty recipes of earlier rounds were picked that way). Here every candidate of a
`--grid` is trained and compared on its best **validation** metric (the trainer's checkpoint
selection is on validation too); the test split of a candidate is never read. Only the winner
becomes the final configuration, whose test split `accuracy.py` evaluates once per seed.

The selection table (`<work>/selection/<dataset>_<variant>.json`) holds validation numbers only
and says so; asking to select on a test metric is refused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalerec.io import write_json

VALID_METRICS = ("ndcg@10", "hr@10", "mrr@10", "ndcg@20", "hr@20", "mrr")


def check_metric(metric: str) -> str:
    """The selection metric, a validation metric by construction; a test metric is refused."""
    name = metric.removeprefix("valid/")
    if metric.startswith("test") or name not in VALID_METRICS:
        raise SystemExit(f"--select-metric {metric!r}: configurations are selected on a validation "
                         f"metric only, one of {', '.join(VALID_METRICS)}; test is read once, for the winner")
    return name


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """`["train.lr=1e-3,3e-4", ...]` -> `[("train.lr", ["1e-3", "3e-4"]), ...]`."""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise SystemExit(f"--grid expects KEY=V1,V2,..., got {item!r}")
        grid.append((key.strip(), [v.strip() for v in values.split(",") if v.strip()]))
    return grid


DESIGNS = ("full", "star")


def candidates(grid: list[tuple[str, list[str]]], design: str = "full") -> list[list[str]]:
    """The grid's candidates as `--set` overrides (one empty candidate without a grid).

    "full": every combination. "star": the centre (each axis's middle value) plus every other value of one
    axis at a time, the others at their centre: 1 + sum(n_i - 1) runs instead of prod(n_i), enough to show
    that a winner found by an earlier grid is interior on every axis (a CPU run of the Scientific text model
    costs ~20 minutes, so a 3 x 3 check is 9 runs as a full grid and 5 as a star). It does not search
    interactions between axes; say so beside its result.
    """
    if design not in DESIGNS:
        raise SystemExit(f"--grid-design {design!r}: one of {', '.join(DESIGNS)}")
    if not grid:
        return [[]]
    keys = [k for k, _ in grid]
    if design == "full":
        return [[f"{k}={v}" for k, v in zip(keys, combo, strict=True)]
                for combo in itertools.product(*(vs for _, vs in grid))]
    for key, values in grid:
        if len(values) % 2 == 0:
            raise SystemExit(f"--grid-design star needs an odd number of values per axis (the middle one is "
                             f"the centre); {key} has {len(values)}")
    centre = [vs[len(vs) // 2] for _, vs in grid]
    out = [[f"{k}={v}" for k, v in zip(keys, centre, strict=True)]]
    for i, (_, values) in enumerate(grid):
        for v in values:
            if v != centre[i]:
                point = list(centre)
                point[i] = v
                out.append([f"{k}={x}" for k, x in zip(keys, point, strict=True)])
    return out


def config_tag(overrides: list[str]) -> str:
    """Short stable tag of a candidate, part of its run name ("" for the single default config)."""
    if not overrides:
        return ""
    return "_c" + hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:8]


def winner_at_edge(grid: list[tuple[str, list[str]]], winner: list[str]) -> dict[str, str]:
    """Numeric grid axes on which the winner takes the lowest or highest value tried: the optimum may lie
    beyond the grid there, so the next grid should extend that axis (both 2026-12-06 ID-SASRec winners sat
    at their lowest LR). Axes with one value or non-numeric values are left out."""
    chosen = dict(o.split("=", 1) for o in winner)
    edges = {}
    for key, values in grid:
        try:
            nums = [float(v) for v in values]
            value = float(chosen[key])
        except (KeyError, ValueError):
            continue
        if len(set(nums)) < 2:
            continue
        if value == min(nums):
            edges[key] = "lowest"
        elif value == max(nums):
            edges[key] = "highest"
    return edges


def winners_at_edge(grid: list[tuple[str, list[str]]],
                    winners: dict[tuple[str, str], list[str]]) -> dict[str, dict[str, str]]:
    """`{"dataset/variant": {axis: "lowest"|"highest"}}` for each winner at its grid's edge. With
    `--stop-at-edge` the benchmark stops there, before reading test: a winner the grid has not bracketed is
    not a final configuration, and its one test read would be spent on a recipe the next grid may replace."""
    edges = {f"{ds}/{var}": winner_at_edge(grid, w) for (ds, var), w in winners.items()}
    return {cell: axes for cell, axes in edges.items() if axes}


def _spell(value: float, values: list[str], integer: bool) -> str:
    """`value` as a grid value: the grid's own spelling where it already ran it (so its runs are found
    again), else an integer or 3 significant digits."""
    same = [v for v in values if math.isclose(float(v), value, rel_tol=1e-6)]
    if same:
        return same[0]
    return str(round(value)) if integer else f"{value:.3g}"


def next_grid(grid: list[tuple[str, list[str]]], winner: list[str], edges: dict[str, str]) -> list[str]:
    """The `--grid` arguments of the star that brackets `winner` past its edges: each edge axis gets the
    winner and one step beyond it on both sides (the step the grid took next to the winner: a ratio for
    positive values, else a difference; integers stay integers), every other axis is fixed at the winner.
    Why: the Games ID star (2026-12-07) ended at lr 1e-4, the lowest of {1e-3, 3e-4, 1e-4}, and its next grid
    was written by hand; the rule is mechanical, so the benchmark says it. The winner's own value keeps its
    spelling, and so does a neighbour the grid already ran, so their finished runs are found again rather
    than retrained. A non-negative axis that won at 0
    is fixed there. A budget edge has no axis here: raise `train.epochs` as well (the hint says so)."""
    chosen = dict(o.split("=", 1) for o in winner)
    out = []
    for key, values in grid:
        if key not in chosen:
            continue
        if key not in edges:
            out.append(f"{key}={chosen[key]}")
            continue
        nums = sorted(float(v) for v in values)
        integer = all(float(v).is_integer() and "." not in v and "e" not in v.lower() for v in values)
        w = float(chosen[key])
        i = nums.index(w)
        neighbour = nums[i + 1] if edges[key] == "lowest" else nums[i - 1]
        if w > 0 and neighbour > 0:
            ratio = max(w, neighbour) / min(w, neighbour)
            lo, hi = w / ratio, w * ratio
        else:
            step = abs(neighbour - w)
            lo, hi = w - step, w + step
        if lo < 0 <= min(nums):  # a non-negative axis (weight decay) won at 0: nothing lies below it
            out.append(f"{key}={chosen[key]}")
            continue
        out.append(f"{key}={_spell(lo, values, integer)},{chosen[key]},{_spell(hi, values, integer)}")
    return out


@dataclass(frozen=True)
class Selection:
    """What `select` chose, and whether the budget bounded it."""

    config: list[str]
    """The winner's overrides."""
    budget_reached: bool = False
    """Every selection seed of the winner ended at its training budget (`reached_budget`): the budget is
    then an axis the selection has not bracketed, like an LR at its grid's edge, and `--stop-at-edge` keeps
    the one test read for a recipe run to its own early stop. False for a single configuration (nothing
    was selected)."""


def valid_score(run_dir: Path, metric: str) -> float:
    """Best validation metric of a finished run (the checkpoint the trainer kept). Reads only
    `final.json["valid"]`; the `test` block beside it is deliberately ignored."""
    final = json.loads((run_dir / "final.json").read_text())
    value = final.get("valid", {}).get(metric)
    if value is None or value != value:
        return float("-inf")  # no validation number (or NaN): never selected
    return float(value)


def reached_budget(run_dir: Path) -> bool:
    """Whether a finished run ended at its training budget (epoch or step cap, or the clock) rather than by
    early stopping on validation. Why it matters: such a run was still allowed to improve, so its score is a
    lower bound, and a slow recipe (a low LR) can lose or win by the cap, not by itself (Games ID, 2026-12-07:
    the lr 1e-4 winner's three runs all ended at the 200-epoch cap with their best epochs at 189-197). A
    final.json without the flag (older runs) counts as stopped early."""
    final = json.loads((run_dir / "final.json").read_text())
    return final.get("stopped_early") is False or bool(final.get("stopped_by_time"))


def margin(ranked: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """How far the winner leads the runner-up, beside each one's seed spread (sample sd). Why: on a flat
    grid the winner's lead can be smaller than seed noise (Office, 2026-12-07: an edge winner ahead by 0.0002
    with seed sds of 0.0005 and 0.0015), and an edge winner chosen by noise does not say the optimum lies past
    the edge. `within_seed_noise` (the lead is below the larger of the two sds) says so; it is a reading aid,
    not a test, and it does not change the winner. `key` names each row's per-seed scores. None with one
    candidate or one seed."""
    if len(ranked) < 2 or len(ranked[0]["seeds"]) < 2:
        return None
    winner, runner_up = ranked[0], ranked[1]
    sd = {name: statistics.stdev(row[key]) for name, row in (("winner", winner), ("runner_up", runner_up))}
    lead = winner["mean"] - runner_up["mean"]
    return {"runner_up": runner_up["config"], "lead": lead, "seed_sd": sd,
            "within_seed_noise": lead < max(sd.values())}


def select(
    dataset: str,
    variant: str,
    grid: list[tuple[str, list[str]]],
    seeds: list[int],
    metric: str,
    train_cell: Callable[[list[str], int], Path],
    work: Path,
    design: str = "full",
) -> Selection:
    """Train every candidate for `seeds`, pick the best mean validation `metric`.

    `train_cell(overrides, seed)` trains (or finds finished) one run and returns its run dir.
    """
    cands = candidates(grid, design)
    if len(cands) == 1:
        return Selection(cands[0])
    rows: list[dict[str, Any]] = []
    for overrides in cands:
        run_dirs = [train_cell(overrides, s) for s in seeds]
        scores = [valid_score(d, metric) for d in run_dirs]
        rows.append({"config": overrides, "tag": config_tag(overrides), "seeds": seeds,
                     f"valid/{metric}": scores, "mean": sum(scores) / len(scores),
                     "reached_budget": [reached_budget(d) for d in run_dirs]})
    ranked = sorted(rows, key=lambda r: -r["mean"])  # stable: ties keep the grid's order, as max() did
    best = ranked[0]
    edges = winner_at_edge(grid, best["config"])
    lead = margin(ranked, f"valid/{metric}")
    report = {"dataset": dataset, "variant": variant, "selected_on": f"valid/{metric}",
              "design": design, "note": "validation only; test was not read for any candidate",
              "winner": best["config"],
              "winner_at_edge": edges, "margin": lead,
              "winner_reached_budget": sum(best["reached_budget"]), "candidates": ranked}
    out = work / "selection" / f"{dataset}_{variant}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, report)  # temporary name, then rename: a killed call leaves the old table or none
    print(json.dumps({"event": "selected", "dataset": dataset, "variant": variant,
                      "on": f"valid/{metric}", "winner": best["config"], "valid_mean": best["mean"],
                      "winner_at_edge": edges, "winner_reached_budget": sum(best["reached_budget"]),
                      "candidates": len(rows),
                      "within_seed_noise": lead["within_seed_noise"] if lead else None}), flush=True)
    return Selection(best["config"], budget_reached=all(best["reached_budget"]))
