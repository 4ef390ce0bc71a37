"""Summarise `overhead_call.sh SHARED=N`: N processes timing their model step on one card at once, per
compile mode.

Why a separate summary: each process prints its own step time, but what decides a compile mode for the
accuracy jobs and sweeps (12-18 runs per card) is the card's aggregate rate, steps per second summed over the
processes whose timed windows overlapped, and its ratio against the default mode measured in the same call.

    python benchmarks/shared_card_summary.py docs/results/step_overhead/h100_2026-12-07_shared12.log
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

HEADER = re.compile(r"^== (\S+) process (\d+) of (\d+)$")


def parse(text: str) -> dict[str, list[dict]]:
    """mode -> one dict per process: its model step (s) and its summary line."""
    modes: dict[str, list[dict]] = {}
    current: dict | None = None
    for line in text.splitlines():
        m = HEADER.match(line.strip())
        if m:
            current = {"process": int(m[2])}
            modes.setdefault(m[1], []).append(current)
        elif current is not None and line.startswith("{"):
            rec = json.loads(line)
            if rec.get("component") == "model_step":
                current["step_s"] = rec["seconds"]
            elif rec.get("summary"):
                current["started_late_s"] = rec.get("started_late_s")
                current["recompiles"] = rec.get("graphs_after_warmup")
    return modes


def summarise(modes: dict[str, list[dict]]) -> list[dict]:
    rows, base = [], None
    for mode, procs in modes.items():
        steps = [p["step_s"] for p in procs if "step_s" in p]
        if not steps:
            rows.append({"mode": mode, "processes": len(procs), "error": "no model_step line"})
            continue
        rate = sum(1.0 / s for s in steps)
        base = base or rate  # the first mode in the log (the script runs default first) is the baseline
        rows.append(
            {
                "mode": mode,
                "processes": len(procs),
                "timed": len(steps),
                "step_ms_median": 1e3 * statistics.median(steps),
                "step_ms_range": [1e3 * min(steps), 1e3 * max(steps)],
                "card_steps_per_s": rate,
                "ratio_vs_first": rate / base,
                "max_started_late_s": max((p.get("started_late_s") or 0.0) for p in procs),
                "recompiles_after_warmup": sum((p.get("recompiles") or 0) for p in procs),
            }
        )
    return rows


def main(path: str) -> None:
    for row in summarise(parse(Path(path).read_text(encoding="utf-8"))):
        print(json.dumps(row))
    print(f"# {path}: card_steps_per_s sums 1/step over processes whose timed windows started together")


if __name__ == "__main__":
    main(sys.argv[1])
