"""Open-loop load for the serving benchmark: requests at a fixed rate, and the highest rate that
keeps the latency bar.

Closed-loop clients (send, wait, send) slow down with the server and hide queueing; here requests
arrive as a Poisson process at `rate` per second whatever the server does, each on an idle
keep-alive connection (a new one when all are busy), and latency runs from the *scheduled* arrival,
so a server that falls behind shows it in p99 (no coordinated omission). `find_rate` doubles the
rate while the bar holds, then bisects between the last passing and the first failing rate.

When the server sends `Server-Timing` (`ServeConfig.server_timing`), every trial also reports the
per-stage split of its requests (`split_ms`: p50 and mean per stage), with `outside_app` = the
client's latency minus the server app's own time (HTTP parsing in uvicorn, the event loop, loopback
TCP, the client); `sequential` measures that split one request at a time, with no queueing.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Sequence

import numpy as np

from scalerec.serve.timing import parse_server_timing

HEAD = (
    "POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Content-Length: {n}\r\n\r\n"
)


def request_bytes(histories: Sequence[Sequence[str]], k: int) -> list[bytes]:
    """One ready-to-send HTTP request per history (built before timing starts)."""
    out = []
    for h in histories:
        body = json.dumps({"history": list(h), "k": k}).encode()
        out.append(HEAD.format(n=len(body)).encode() + body)
    return out


def answer_ok(status: bytes, payload: bytes, k: int) -> bool:
    """A 200 answer holding exactly `k` recommendations (anything else counts as an error)."""
    return b" 200 " in status and payload.count(b'"key"') == k


async def exchange(conn: tuple, request: bytes) -> tuple[bytes, bytes, dict[str, float]]:
    """Send one request; (status line, body, the Server-Timing stages in ms or {})."""
    reader, writer = conn
    writer.write(request)
    status = await reader.readline()
    length, timing = 0, {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"server-timing":
            timing = parse_server_timing(value.decode("ascii", errors="replace"))
    return status, await reader.readexactly(length), timing


def split_summary(stages: Sequence[dict[str, float]], latency_s: Sequence[float]) -> dict:
    """Per-stage p50 / mean (ms) over requests that reported `Server-Timing` ({} when none did);
    `total` is the client's latency and `outside_app` its part outside the server app."""
    pairs = [(st, t * 1e3) for st, t in zip(stages, latency_s, strict=True) if st]
    if not pairs:
        return {}
    names = list(dict.fromkeys(name for st, _ in pairs for name in st))
    cols = {n: [st.get(n, 0.0) for st, _ in pairs] for n in names}
    cols["total"] = [t for _, t in pairs]
    if "app" in cols:
        cols["outside_app"] = [t - a for t, a in zip(cols["total"], cols["app"], strict=True)]
    return {"requests": len(pairs), **{n: {"p50": round(float(np.median(v)), 3),
                                           "mean": round(float(np.mean(v)), 3)} for n, v in cols.items()}}


async def sequential(port: int, requests: list[bytes], n: int, k: int) -> dict:
    """`n` requests one after another on one keep-alive connection (no queueing anywhere): the
    per-request split of the server path. Errors are counted, their split left out."""
    conn = await asyncio.open_connection("127.0.0.1", port)
    lat: list[float] = []
    stages: list[dict[str, float]] = []
    errors = 0
    try:
        for i in range(n):
            t0 = time.perf_counter()
            status, payload, timing = await exchange(conn, requests[i % len(requests)])
            ok = answer_ok(status, payload, k)
            errors += not ok
            lat.append(time.perf_counter() - t0)
            stages.append(timing if ok else {})
    finally:
        conn[1].close()
    return {"requests": n, "errors": errors, "split_ms": split_summary(stages, lat)}


async def open_loop(
    port: int, requests: list[bytes], rate: float, duration: float, k: int, seed: int
) -> dict:
    """Offer `rate` requests/s for `duration` s; latency percentiles (ms) from scheduled arrival."""
    rng = random.Random(seed)
    idle: list[tuple] = []
    lat: list[float] = []
    errs: list[str] = []
    stages: list[dict[str, float]] = []
    opened = stale = 0

    async def connect() -> tuple:
        nonlocal opened
        opened += 1
        return await asyncio.open_connection("127.0.0.1", port)

    async def fire(at: float, request: bytes) -> None:
        nonlocal stale
        reused = bool(idle)
        conn = idle.pop() if reused else None
        try:
            conn = conn or await connect()
            try:
                status, payload, timing = await exchange(conn, request)
                if reused and not status:  # closed before answering: a keep-alive the server timed out
                    raise ConnectionResetError("stale keep-alive connection")
            except (ConnectionError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # what an HTTP client's pool does (urllib3, browsers): the server closed the idle
                # connection (uvicorn: after 5 s), so send once more on a new one; the latency
                # still runs from the scheduled arrival
                conn[1].close()
                stale += 1
                conn = await connect()
                status, payload, timing = await exchange(conn, request)
            lat.append(time.perf_counter() - at)
            if not answer_ok(status, payload, k):
                errs.append(status.decode(errors="replace").strip() or "empty answer")
                timing = {}
            stages.append(timing)
            idle.append(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            lat.append(time.perf_counter() - at)
            stages.append({})
            errs.append(repr(exc))

    tasks = []
    start = time.perf_counter() + 0.05
    at, i = start, 0
    while at < start + duration:
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(fire(at, requests[i % len(requests)])))
        i += 1
        at += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    ms = np.array(lat) * 1e3
    pct = {f"p{p}_ms": round(float(np.percentile(ms, p)), 2) for p in (50, 90, 99)} if len(ms) else {}
    return {"offered_rps": rate, **pct, "requests": len(lat),
            "achieved_rps": round(len(lat) / max(time.perf_counter() - start, duration), 1),
            "errors": len(errs), "first_errors": errs[:3], "connections": opened, "stale_reconnects": stale,
            **({"split_ms": split} if (split := split_summary(stages, lat)) else {})}


def meets_bar(step: dict, p50_ms: float = 10.0, p99_ms: float = 50.0) -> bool:
    return step["errors"] == 0 and step.get("p50_ms", 1e9) <= p50_ms and step.get("p99_ms", 1e9) <= p99_ms


def trial_seconds(rate: float, duration: float, min_requests: int) -> float:
    """Seconds of load for one rate trial: at least `duration`, and long enough that `min_requests`
    arrive at that rate. A 14-request trial at 1.6 req/s once "passed" the p50 bar while every other
    rate around it failed by 0.1-1.8 ms: a p50 over so few requests is noise, not a finding."""
    if rate <= 0 or duration <= 0 or min_requests < 0:
        raise ValueError("rate and duration must be > 0 and min_requests >= 0")
    return max(duration, min_requests / rate)


def find_rate(
    run: Callable[[float], dict], start: float, steps: int, ok: Callable[[dict], bool], min_rate: float = 1.0
) -> dict:
    """Highest offered rate with `ok(run(rate))`, within `steps` trials (doubling, then bisection
    until the passing and failing rates are within 10%). Returns every trial and the best one."""
    good: float | None = None
    bad: float | None = None
    rate, trials = start, []
    for _ in range(steps):
        result = run(rate)
        result["meets_bar"] = ok(result)
        trials.append(result)
        print(json.dumps({"rate_trial": result}), flush=True)
        if result["meets_bar"]:
            good = rate
        else:
            bad = rate
        if good is not None and bad is not None and bad / good <= 1.1:
            break
        if good is None and rate <= min_rate:
            break  # the bar does not hold even at a trickle
        if bad is None:
            rate = rate * 2
        elif good is None:
            rate = rate / 2
        else:
            rate = (good + bad) / 2
    best = max((t for t in trials if t["meets_bar"]), key=lambda t: t["offered_rps"], default=None)
    return {"best": best, "trials": trials, "first_failing_rps": bad}
