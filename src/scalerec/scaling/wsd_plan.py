"""Planning of warmup-stable-decay cells: a trunk and its cooldown branches (see
`scalerec.scaling.branches`, which runs them). Kept apart from the runner so the sweep spec can
expand its plan without importing the runner. `spec` is a `SweepSpec` and `head` a `PlannedRun`
(typed `Any` here: `scaling.spec` imports this module, not the reverse).
"""

from __future__ import annotations

import copy
from typing import Any

from scalerec.errors import UserError


def _wsd_cfg(cfg: Any, total: int, decay_frac: float, warmup: int) -> Any:
    cfg = copy.deepcopy(cfg)
    t = cfg.train
    t.schedule, t.max_steps, t.max_targets, t.max_flops = "wsd", total, None, None
    t.decay_steps, t.warmup_steps = max(1, round(decay_frac * total)), warmup
    return cfg


def branch_lengths(spec: Any, total: int) -> list[int]:
    """Total steps of each branch (sorted, distinct, shorter than the trunk's stable phase)."""
    stable_end = total - max(1, round(spec.decay_frac * total))
    lengths = sorted({max(2, round(b * total)) for b in spec.branches})
    return [n for n in lengths if n - max(1, round(spec.decay_frac * n)) < stable_end]


def expand_wsd(spec: Any, head: Any, with_branches: bool = True) -> list[Any]:
    """[trunk, branch, …] of one cell (run ids filled by the caller). Warmup: `train.warmup_steps`
    if set, else `warmup` × the shortest branch's stable phase — identical in every run of the group."""
    total = int(head.cfg.train.max_steps)
    lengths = branch_lengths(spec, total) if with_branches else []
    shortest = min([total, *lengths])
    stable = shortest - max(1, round(spec.decay_frac * shortest))
    t = head.cfg.train
    warmup = t.warmup_steps if t.warmup_steps is not None else int(t.warmup * stable)
    if warmup >= stable:
        raise UserError(
            f"sweep: warmup ({warmup} steps) must end before the shortest branch decays (step {stable})"
        )
    trunk = copy.copy(head)
    trunk.cfg = _wsd_cfg(head.cfg, total, spec.decay_frac, warmup)
    trunk.role = "trunk" if lengths else "single"
    group = [trunk]
    for n in lengths:
        b = copy.copy(head)
        b.cfg = _wsd_cfg(head.cfg, n, spec.decay_frac, warmup)
        b.role, b.branch_step = "branch", n - b.cfg.train.decay_steps
        group.append(b)
    return group
