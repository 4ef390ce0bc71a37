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


def test_the_load_generator_keeps_off_the_server_cores_hyperthread_siblings(tmp_path) -> None:
    """Server pinned to CPUs 0 and 1 of a host whose core 0 is CPUs 0 and 8 and core 1 is CPUs 1 and 9:
    the load generator gets every other CPU but 8 and 9, so the server has 2 whole cores; on a host
    without siblings (or without sysfs), it gets every other CPU."""
    serve = load_script("benchmarks/serve.py")
    for cpu, siblings in {0: "0,8", 1: "1,9", 8: "0,8", 9: "1,9", 2: "2,10"}.items():
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "thread_siblings_list").write_text(siblings + "\n")
    allowed = set(range(16))
    assert serve.hyperthread_siblings({0, 1}, tmp_path) == {8, 9}
    assert serve.load_generator_cpus({0, 1}, allowed, tmp_path) == allowed - {0, 1, 8, 9}
    assert serve.load_generator_cpus({0, 1}, {0, 1, 8, 9}, tmp_path) == {8, 9}  # nothing else left
    assert serve.load_generator_cpus({0, 1}, allowed, tmp_path / "none") == allowed - {0, 1}
    (tmp_path / "r").mkdir()
    topo = tmp_path / "r" / "cpu3" / "topology"
    topo.mkdir(parents=True)
    (topo / "thread_siblings_list").write_text("3-4\n")  # the range form
    assert serve.hyperthread_siblings({3}, tmp_path / "r") == {4}


def test_keep_alive_connections_the_server_closed_while_idle_are_not_errors() -> None:
    """A server that closes a keep-alive connection after 0.15 s idle (uvicorn: 5 s) and requests
    0.3 s apart: every request finds its pooled connection closed, is sent again on a new one and
    counts as answered (a real HTTP client does the same), while a server that drops a request on
    a fresh connection still counts as an error."""
    import asyncio

    body = b'{"items": [' + b",".join([b'{"key": "x"}'] * 10) + b"]}"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, drop: bool) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.15)
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                if drop:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def run(drop: bool) -> dict:
        server = await asyncio.start_server(lambda r, w: handle(r, w, drop), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        requests = serve_load.request_bytes([["A"]], 10)
        async with server:
            return await serve_load.open_loop(port, requests, 1 / 0.3, 2.0, 10, seed=0)

    ok = asyncio.run(run(drop=False))
    assert ok["requests"] >= 3 and ok["errors"] == 0, ok["first_errors"]
    assert ok["stale_reconnects"] >= 1 and ok["connections"] >= ok["stale_reconnects"] + 1
    dropped = asyncio.run(run(drop=True))
    assert dropped["errors"] == dropped["requests"] > 0
