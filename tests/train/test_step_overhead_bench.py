"""The timing helpers of benchmarks/step_overhead.py: a per-epoch component is timed after an untimed first
call, which on the GPU pays one-off kernel selection (2026-12-06: validation timed 1.25-2.78 s from its first
call, while the real loop spent ~0.17 s an epoch on validation and saves together)."""

from __future__ import annotations

import torch

from bench_scripts import load_script


def _bench():
    return load_script("benchmarks/step_overhead.py")


def test_timed_leaves_the_first_call_out_of_the_median(monkeypatch):
    b = _bench()
    now = [0.0]
    costs = iter([5.0, 1.0, 1.0])  # a slow first call (kernel selection), then the steady cost

    def fn():
        now[0] += next(costs)

    monkeypatch.setattr(b.time, "perf_counter", lambda: now[0])
    assert b.timed(fn, torch.device("cpu"), repeat=2) == 1.0  # without the warm-up: median(5, 1) = 3
    costs = iter([5.0, 1.0, 1.0])
    assert b.timed(fn, torch.device("cpu"), repeat=2, warmup=0) == 3.0


def test_timed_pair_times_every_call():
    b = _bench()
    calls = {"a": 0, "b": 0}

    def bump(key):
        calls[key] += 1

    a, bs = b.timed_pair(lambda: bump("a"), lambda: bump("b"), torch.device("cpu"), repeat=3)
    assert len(a) == len(bs) == 3 and calls == {"a": 3, "b": 3}  # alternating: no extra warm-up calls


def test_wait_until_sleeps_to_a_common_start_and_reports_lateness(monkeypatch):
    b = _bench()
    slept = []
    monkeypatch.setattr(b.time, "time", lambda: 100.0)
    monkeypatch.setattr(b.time, "sleep", slept.append)
    assert b.wait_until(0.0) == 0.0 and slept == []  # no start time: no wait
    assert b.wait_until(102.5) == 0.0 and slept == [2.5]
    assert b.wait_until(99.0) == 1.0 and slept == [2.5]  # already past: start now, say by how much


def test_shared_card_summary_sums_rates_and_compares_with_the_first_mode():
    """The aggregate rate is the sum of 1/step over the processes, so two processes at 10 ms make 200 steps/s;
    the second mode's ratio is against the first's rate, measured in the same log."""
    import json

    summary = load_script("benchmarks/shared_card_summary.py")

    def proc(mode: str, i: int, step_s: float | None) -> list[str]:
        lines = [f"== {mode} process {i} of 2"]
        if step_s is not None:
            lines.append(json.dumps({"component": "model_step", "per": "step", "seconds": step_s}))
        lines.append(json.dumps({"summary": True, "started_late_s": 0.5 * i, "graphs_after_warmup": 0}))
        return lines

    text = "\n".join(proc("default", 1, 0.01) + proc("default", 2, 0.01) + proc("fast", 1, 0.005)
                     + proc("fast", 2, None))
    rows = summary.summarise(summary.parse(text))
    assert [r["mode"] for r in rows] == ["default", "fast"]
    assert rows[0]["card_steps_per_s"] == 200.0 and rows[0]["ratio_vs_first"] == 1.0
    assert rows[0]["max_started_late_s"] == 1.0
    # a process that printed no step counts as a process but not as a rate: 1/0.005 = 200, ratio 1
    assert rows[1]["processes"] == 2 and rows[1]["timed"] == 1 and rows[1]["ratio_vs_first"] == 1.0
