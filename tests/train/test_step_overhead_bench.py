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
