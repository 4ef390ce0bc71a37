"""What the study costs before it runs: analytic training FLOPs per cell, minutes at a stated
throughput, and the cells cut into calls that fit a per-call time limit.

FLOPs use the project's accounting (`scalerec.model.flops` through `scalerec.train.build.flops_per_target`
for `scalerec.train` runs, the same per-target formula `finetune` reports for fine-tuning), and
targets per epoch from the dataset cards as `scalerec.scaling.estimate` does: leave-one-out keeps
n − 3 next-item targets of a user's n interactions. Epoch counts are the caps (early stopping ends
most runs sooner), so the totals are upper bounds. Minutes = FLOPs / `spec.flops_per_s` +
`spec.overhead_s` per cell: a stated assumption, not a measurement (small models on a large GPU are
bound by per-step and evaluation overheads, not by FLOPs).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from scalerec.transfer.study.cells import Cell, StudySpec
from scalerec.transfer.study.execute import recipe

POPULAR_S = 2.0
"""Assumed seconds of a most-popular cell (counting, no model)."""


@dataclasses.dataclass(frozen=True)
class Costed:
    """One cell with its estimated training FLOPs and minutes."""

    cell: Cell
    flops: float
    minutes: float


def _card(dataset: str | Path) -> dict[str, Any]:
    return json.loads((Path(dataset) / "card.json").read_text())


def _targets(card: dict[str, Any], fraction: float = 1.0) -> tuple[float, float]:
    """(training targets per epoch, mean targets per sequence) from card counts."""
    n, u = float(card["n_interactions"]), float(card["n_users"])
    return max(fraction * (n - 3.0 * u), 1.0), max(n / max(u, 1.0) - 3.0, 1.0)


def _train_fpt(sets: list[str], size: str | None, toml: Path | None, n_items: int, per_seq: float) -> tuple:
    from scalerec.train import build
    from scalerec.train.config import resolve_run_config

    cfg = resolve_run_config(toml, sets, size=size)
    mcfg = dataclasses.replace(cfg.model, n_items=n_items, vocab_size=max(cfg.model.vocab_size, 2))
    micro = cfg.train.batch_size // cfg.train.grad_accum
    fpt = build.flops_per_target(mcfg, cfg, micro, micro * min(per_seq, cfg.data.max_len), n_items)
    return fpt, float(cfg.train.epochs or 0.0)


def cell_flops(cell: Cell, spec: StudySpec, layout: dict[str, Any], root: Path) -> float:
    """Upper-bound training FLOPs of one cell (epoch caps; 0 for zero-shot and most-popular)."""
    from scalerec.model import sizes
    from scalerec.model.flops import flops_per_target

    paths = layout["targets"][cell.target]
    if cell.kind == "popular" or (cell.kind == "finetune" and cell.method == "zero-shot"):
        return 0.0
    if cell.kind == "pretrain":
        card = _card(paths["corpus"])
        tpe, per_seq = _targets(card)
        sets = [
            f"train.loss={spec.pretrain_loss}",
            f"train.negatives={spec.pretrain_negatives}",
            f"train.batch_size={spec.pretrain_batch}",
            f"data.max_len={spec.max_len}",
            "model.item_encoder=text",
            *spec.pretrain_set,
        ]
        fpt, _ = _train_fpt(sets, cell.size, None, int(card["n_items"]), per_seq)
        return fpt * tpe * spec.pretrain_epochs
    card = _card(paths["dataset"])
    tpe, per_seq = _targets(card, cell.fraction)
    if cell.kind == "baseline":
        fpt, epochs = _train_fpt(
            list(spec.baseline_set),
            None,
            recipe(root, cell.target, cell.method),
            int(card["n_items"]),
            per_seq,
        )
        return fpt * tpe * epochs
    mcfg = sizes.model_config(cell.size, max_len=spec.max_len, vocab_size=2)
    fpt = flops_per_target(mcfg, spec.ft_negatives, spec.max_len, batch_targets=spec.ft_batch * spec.max_len)
    epochs = spec.ft_epochs + (mcfg.n_layers * spec.stage_epochs if cell.method == "progressive" else 0)
    fisher = spec.ewc_batches * spec.ft_batch * per_seq if cell.method == "ewc" else 0.0
    return fpt["total"] * (tpe * epochs + fisher)


def cost(cells: list[Cell], spec: StudySpec, layout: dict[str, Any], root: Path) -> list[Costed]:
    out = []
    for c in cells:
        f = cell_flops(c, spec, layout, root)
        fixed = POPULAR_S if c.kind == "popular" else spec.overhead_s
        out.append(Costed(c, f, (f / spec.flops_per_s + fixed) / 60.0))
    return out


def calls(costed: list[Costed], call_minutes: float, jobs: int = 1) -> list[list[Costed]]:
    """Cells in run order cut into calls of at most `call_minutes` (with `jobs` cells side by side:
    a call's estimate is its summed minutes / jobs). A new phase starts a new call, since its cells
    need the previous phase's choices; a cell longer than a call gets a call of its own."""
    out: list[list[Costed]] = []
    used = float("inf")
    phase = None
    for c in costed:
        m = c.minutes / max(1, jobs)
        if used + m > call_minutes or c.cell.phase != phase:
            out.append([])
            used = 0.0
        out[-1].append(c)
        used += m
        phase = c.cell.phase
    return out


def render(costed: list[Costed], spec: StudySpec, call_minutes: float, jobs: int, verbose: bool) -> str:
    """The plan as text: every cell (with `verbose`), totals by kind, then the calls."""
    lines = []
    if verbose:
        lines.append(f"{'cell':<58} {'phase':>5} {'GFLOP':>12} {'est min':>8}")
        lines += [
            f"{c.cell.name:<58} {c.cell.phase:>5} {c.flops / 1e9:>12.1f} {c.minutes:>8.2f}" for c in costed
        ]
        lines.append("")
    kinds: dict[str, list[Costed]] = {}
    for c in costed:
        kinds.setdefault(c.cell.kind, []).append(c)
    lines.append(
        f"assumed throughput {spec.flops_per_s:.3g} FLOP/s, {spec.overhead_s:g} s fixed per cell; "
        "epoch caps (upper bounds)"
    )
    for kind, cs in kinds.items():
        lines.append(
            f"  {kind:<9} {len(cs):>4} cells  {sum(c.flops for c in cs):.3e} FLOPs  "
            f"{sum(c.minutes for c in cs):7.1f} min"
        )
    total_f, total_m = sum(c.flops for c in costed), sum(c.minutes for c in costed)
    lines.append(
        f"  total     {len(costed):>4} cells  {total_f:.3e} FLOPs  {total_m:7.1f} min "
        f"(≈ {total_m / max(1, jobs):.1f} min with --jobs {jobs})"
    )
    parts = calls(costed, call_minutes, jobs)
    lines.append(
        f"{len(parts)} calls of ≤ {call_minutes:g} min (same command each time; finished cells are skipped):"
    )
    for i, part in enumerate(parts, 1):
        m = sum(c.minutes for c in part) / max(1, jobs)
        lines.append(
            f"  call {i:>3}: phase {part[0].cell.phase}, {len(part):>3} cells, est {m:5.1f} min "
            f"({part[0].cell.name} … {part[-1].cell.name})"
        )
    return "\n".join(lines)
