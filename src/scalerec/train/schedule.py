"""Learning-rate schedules as pure functions of the step (nanoGPT style): factor in [0, 1] × peak LR.

A pure function makes resume trivial (the step is the whole state) and lets tests check values.
`one_cycle` mirrors `torch.optim.lr_scheduler.OneCycleLR` (cosine annealing, the paper's RecBole
schedule): from peak/25 up to the peak over `pct_start` of the run, then down to peak/(25·1e4).
`wsd` is warmup-stable-decay (Hu et al. 2024, MiniCPM; Hägele et al. 2024): the LR stays at its
peak until the last `decay_steps`, so a run resumed from any stable-phase step s and decayed for d
steps *is* the run of s + d steps — one long run per size yields several data sizes (scaling.sweep).
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


def wsd(step: int, total_steps: int, warmup_steps: int, decay_steps: int, min_ratio: float = 0.0) -> float:
    """Linear warmup over `warmup_steps`, constant 1, then a 1-sqrt decay to `min_ratio` over the
    last `decay_steps` (1-sqrt beat linear and cosine cooldowns in Hägele et al. 2024). Depends on
    `total_steps` only through the decay start, so two runs agree until the shorter one decays."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    start = total_steps - decay_steps
    if decay_steps <= 0 or step < start:
        return 1.0
    progress = min(1.0, (step - start + 1) / decay_steps)
    return min_ratio + (1.0 - min_ratio) * (1.0 - math.sqrt(progress))


def constant(step: int, total_steps: int) -> float:
    return 1.0


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def lr_factor(
    kind: Literal["cosine", "onecycle", "constant", "wsd"],
    step: int,
    total_steps: int,
    warmup_steps: int = 0,
    min_ratio: float = 0.1,
    decay_steps: int | None = None,
) -> float:
    """Dispatch on the config's `train.schedule` value (`decay_steps`: wsd only, default 20%)."""
    if kind == "wsd":
        decay = decay_steps if decay_steps is not None else round(0.2 * total_steps)
        return wsd(step, total_steps, warmup_steps, decay, min_ratio)
    if kind == "cosine":
        return warmup_cosine(step, total_steps, warmup_steps, min_ratio)
    if kind == "onecycle":
        return one_cycle(step, total_steps)
    if kind == "constant":
        return constant(step, total_steps)
    raise ValueError(f"unknown schedule {kind!r}")
