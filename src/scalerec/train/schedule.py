"""Learning-rate schedules as pure functions of the step (nanoGPT style): factor in [0, 1] × peak LR.

A pure function makes resume trivial (the step is the whole state) and lets tests check values.
`one_cycle` mirrors `torch.optim.lr_scheduler.OneCycleLR` (cosine annealing, the paper's RecBole
schedule): from peak/25 up to the peak over `pct_start` of the run, then down to peak/(25·1e4).
"""

from __future__ import annotations

import math
from typing import Literal


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, min_ratio: float = 0.1) -> float:
    """Linear warmup from 0 to 1 over `warmup_steps`, then cosine decay to `min_ratio` at `total_steps`."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def one_cycle(
    step: int, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0, final_div: float = 1e4
) -> float:
    """OneCycleLR factor (anneal_strategy='cos'): 1/div → 1 → 1/(div·final_div)."""
    initial, final = 1.0 / div_factor, 1.0 / (div_factor * final_div)
    up = max(1.0, pct_start * total_steps - 1)
    if step <= up:
        return _cos(initial, 1.0, step / up)
    down = max(1.0, total_steps - 1 - up)
    return _cos(1.0, final, min(1.0, (step - up) / down))


def constant(step: int, total_steps: int) -> float:
    return 1.0


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def lr_factor(
    kind: Literal["cosine", "onecycle", "constant"],
    step: int,
    total_steps: int,
    warmup_steps: int = 0,
    min_ratio: float = 0.1,
) -> float:
    """Dispatch on the config's `train.schedule` value."""
    if kind == "cosine":
        return warmup_cosine(step, total_steps, warmup_steps, min_ratio)
    if kind == "onecycle":
        return one_cycle(step, total_steps)
    if kind == "constant":
        return constant(step, total_steps)
    raise ValueError(f"unknown schedule {kind!r}")
