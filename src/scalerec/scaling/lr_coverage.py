"""Which LR searches of a v2 sweep actually ran: a size whose search is incomplete is flagged in words.

`scaling.table` marks one `lr_selected` row per (encoder, size, subset, seed) cell, whatever LRs that
cell ran. In a sweep that is still running, or whose runs failed (pooled_v2: every text run of
size `s+` ran out of GPU memory), a cell may have finished one LR of its grid: its "winner" is then
the only LR that ran, not the result of a search, and any law or saturation size that uses it
inherits an untuned recipe. This module says so per (encoder, size); it never drops a run.

Rule: an (encoder, size) is *complete* when every D point (subset) it reached ran every LR of its
grid (over its seeds together; a spec's extra seeds run only the size's own LR by design,
`SweepSpec.extra_seeds_all_lrs`, so they cannot be asked for more). A size with no finished run at
all is incomplete too. Held-out sizes (never fitted) are left out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any


def _grid(rows: list[dict[str, Any]]) -> list[float]:
    """The LR grid planned for these rows (the union of their `lr_grid` strings, all statuses)."""
    vals = {float(x) for r in rows for x in str(r.get("lr_grid") or "").split(",") if x}
    if not vals:  # a table written before `lr_grid` existed: the LRs the rows name
        vals = {float(r["lr"]) for r in rows if r.get("lr") is not None}
    return sorted(vals)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)


def _done(grid: list[float], lrs: set[float]) -> list[float]:
    """The grid's LRs among `lrs` (a run's `lr` and its `lr_grid` string agree to 6 digits)."""
    return [g for g in grid if any(_same(g, x) for x in lrs)]


def _size_order(rows: list[dict[str, Any]], sizes: list[Any]) -> list[Any]:
    """Sizes by non-embedding N (failed runs carry none), unknown N last in first-seen order."""
    n = {
        s: r["n_params_non_embedding"]
        for r in rows
        for s in [r.get("size")]
        if r.get("n_params_non_embedding")
    }
    return sorted(sizes, key=lambda s: (s not in n, n.get(s, 0), sizes.index(s)))


def _entry(encoder: Any, size: Any, group: list[dict[str, Any]]) -> dict[str, Any]:
    grid = _grid(group)
    ok = [r for r in group if r.get("status") == "ok"]
    by_subset: dict[Any, set[float]] = defaultdict(set)
    for r in ok:
        by_subset[r.get("subset")].add(float(r["lr"]))
    per_subset = {str(s): _done(grid, lrs) for s, lrs in sorted(by_subset.items(), key=lambda kv: str(kv[0]))}
    done = _done(grid, {float(r["lr"]) for r in ok})
    short = {s: d for s, d in per_subset.items() if len(d) < len(grid)}
    failed = [r for r in group if r.get("status") != "ok"]
    entry: dict[str, Any] = {
        "encoder": encoder,
        "size": size,
        "lr_grid": grid,
        "lrs_done": done,
        "lrs_done_by_subset": per_subset,
        "n_runs": len(group),
        "n_ok": len(ok),
        "n_failed": len(failed),
        "complete": bool(ok) and not short,
    }
    if failed:
        entry["first_error"] = str(failed[0].get("error") or "")[:120]
    entry["note"] = _note(entry, short)
    return entry


def _note(e: dict[str, Any], short: dict[str, list[float]]) -> str:
    """One sentence for the fit output and the report (empty for a complete search)."""
    name = "/".join(str(x) for x in (e["encoder"], e["size"]) if x is not None)
    grid = ", ".join(f"{v:.4g}" for v in e["lr_grid"])
    failed = f"; {e['n_failed']} of {e['n_runs']} runs failed" if e["n_failed"] else ""
    if not e["n_ok"]:
        return f"{name}: no run finished (LR grid {grid}){failed}; this size is missing from every fit"
    if e["complete"]:
        return ""
    done = ", ".join(f"{v:.4g}" for v in e["lrs_done"])
    where = "" if len(short) == len(e["lrs_done_by_subset"]) else f" at {len(short)} of its D points"
    return (
        f"{name}: LR search incomplete{where}, {len(e['lrs_done'])} of {len(e['lr_grid'])} LRs done "
        f"({done or 'none'} of {grid}){failed}; its LR choice is not a real search"
    )


def lr_coverage(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (encoder, size) of the table, encoders in first-seen order, sizes by N."""
    groups: dict[Any, dict[Any, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if not r.get("holdout"):
            groups[r.get("encoder")][r.get("size")].append(r)
    out = []
    for enc, sizes in groups.items():
        for size in _size_order([r for g in sizes.values() for r in g], list(sizes)):
            out.append(_entry(enc, size, sizes[size]))
    return out


def incomplete(coverage: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries whose LR search is incomplete (or that never finished a run)."""
    return [e for e in coverage if not e["complete"]]


def incomplete_sizes(coverage: list[dict[str, Any]], encoder: Any) -> set[Any]:
    """Sizes of `encoder` whose LR search is incomplete (marked in the saturation and paper tables)."""
    return {e["size"] for e in incomplete(coverage) if e["encoder"] == encoder}
