"""The serving benchmark's rate search (benchmarks/serve_load.py): it must land on the highest rate
that keeps the bar, within 10%, whatever side of it the first guess is."""

from __future__ import annotations

import pytest

from bench_scripts import load_script

serve_load = load_script("benchmarks/serve_load.py")


def _server(capacity: float):
    """A fake trial: latency fine below `capacity` req/s, queueing blow-up above it."""

    def trial(rate: float) -> dict:
        slow = rate > capacity
        return {"offered_rps": rate, "p50_ms": 30.0 if slow else 4.0, "p99_ms": 200.0 if slow else 20.0,
                "errors": 0, "requests": int(rate)}

    return trial


@pytest.mark.parametrize("start", [10.0, 300.0, 5000.0])
def test_find_rate_lands_within_ten_percent_of_capacity(start: float) -> None:
    found = serve_load.find_rate(_server(437.0), start, 20, serve_load.meets_bar)
    best = found["best"]["offered_rps"]
    assert best <= 437.0 and found["first_failing_rps"] / best <= 1.1
    assert found["first_failing_rps"] > 437.0


def test_meets_bar_needs_every_condition() -> None:
    ok = {"p50_ms": 9.9, "p99_ms": 49.0, "errors": 0}
    assert serve_load.meets_bar(ok)
    assert not serve_load.meets_bar({**ok, "errors": 1})
    assert not serve_load.meets_bar({**ok, "p50_ms": 10.1})
    assert not serve_load.meets_bar({**ok, "p99_ms": 50.5})
    assert not serve_load.meets_bar({"errors": 0})  # no requests answered: no percentiles


def test_request_bytes_are_complete_http_requests() -> None:
    (req,) = serve_load.request_bytes([["A", "B"]], 10)
    head, body = req.split(b"\r\n\r\n")
    assert head.startswith(b"POST /recommend HTTP/1.1") and f"Content-Length: {len(body)}".encode() in head


def test_find_rate_gives_up_when_the_bar_never_holds() -> None:
    found = serve_load.find_rate(_server(0.0), 8.0, 50, serve_load.meets_bar)
    assert found["best"] is None and len(found["trials"]) == 4  # 8, 4, 2, 1 req/s


def test_trial_seconds_stretches_slow_rates_to_min_requests() -> None:
    assert serve_load.trial_seconds(25.0, 8.0, 100) == 8.0
    assert serve_load.trial_seconds(1.5625, 8.0, 100) == 64.0
    assert serve_load.trial_seconds(2.0, 8.0, 0) == 8.0
    with pytest.raises(ValueError):
        serve_load.trial_seconds(0.0, 8.0, 100)
