"""Serving benchmark: top-10 latency of the real HTTP server under concurrent load, on loopback.

Builds a synthetic clustered catalog (`scalerec.serve.synthetic.ClusteredEncoder`, default 1,000,000
items × d=256) inside a uvicorn server started as a subprocess on 127.0.0.1, then runs `--clients`
closed-loop keep-alive clients (raw asyncio HTTP/1.1, so the load generator costs little of the
shared CPU) posting `/recommend` with k=10 and 5-item histories for `--duration` seconds.
It runs twice: the approximate index (`--index`, IVF by default) and, as the same-run baseline,
the exact index (matmul), and prints one JSON line per phase (p50/p90/p99 latency in ms, requests/s,
errors, the index report with recall@10 vs exact measured at build) plus a ratio line. Server and
client CPU time per request are reported too: on a shared, loaded machine (the 1-minute load
average is printed) they tell what the cores would sustain if they were ours.

    python benchmarks/serve.py                      # short run (5 s per phase)
    python benchmarks/serve.py --duration 60        # the bar: p50 ≤ 10 ms, p99 ≤ 50 ms, recall ≥ 0.95
    python benchmarks/serve.py --items 20000 --dim 64 --duration 2   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np

from scalerec.serve.server import SWITCH_INTERVAL_S


def serve_child(args: argparse.Namespace) -> None:
    """Subprocess body: build the catalog + index, then serve it with uvicorn until killed."""
    from scalerec.serve.api import create_app
    from scalerec.serve.index import IndexConfig, set_search_threads
    from scalerec.serve.recommender import Recommender, ServeConfig
    from scalerec.serve.server import serve
    from scalerec.serve.synthetic import ClusteredEncoder, synthetic_items

    if args.server_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.server_cpus.split(",")})
    t0 = time.perf_counter()
    encoder = ClusteredEncoder(args.items, args.dim, seed=args.seed)
    cfg = ServeConfig(index=IndexConfig(kind=args.index, seed=args.seed, ivf_codes=args.codes))
    rec = Recommender(encoder, synthetic_items(args.items), cfg)
    set_search_threads(args.search_threads)
    print(json.dumps({"child": "ready", "setup_s": round(time.perf_counter() - t0, 1)}), flush=True)
    serve(create_app(rec), "127.0.0.1", args.port, args.switch_interval_ms / 1e3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, kind: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [
        sys.executable,
        __file__,
        "--serve-child",
        "--index",
        kind,
        "--port",
        str(port),
        "--items",
        str(args.items),
        "--dim",
        str(args.dim),
        "--seed",
        str(args.seed),
        "--codes",
        args.codes,
        "--server-cpus",
        args.server_cpus or "",
        "--search-threads",
        str(args.search_threads),
        "--switch-interval-ms",
        str(args.switch_interval_ms),
    ]
    proc = subprocess.Popen(cmd, stdout=sys.stderr)
    deadline = time.time() + args.startup_timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with code {proc.returncode} during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start in time")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        return json.loads(r.read())


async def one_client(port: int, n_items: int, stop_at: float, seed: int, lat: list, errs: list) -> None:
    """Closed loop on one keep-alive connection: send, read the full response, record, repeat."""
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            hist = [f"I{rng.randint(1, n_items):07d}" for _ in range(5)]
            body = json.dumps({"history": hist, "k": 10}).encode()
            head = (
                f"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            t0 = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            payload = await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if b" 200 " not in status_line or payload.count(b'"key"') != 10:
                errs.append(status_line.decode(errors="replace").strip())
    except (OSError, asyncio.IncompleteReadError) as exc:
        errs.append(repr(exc))
    finally:
        writer.close()


async def load(port: int, args: argparse.Namespace, duration: float) -> dict:
    lat: list[float] = []
    errs: list[str] = []
    await asyncio.gather(
        *[
            one_client(port, args.items, time.perf_counter() + 1.0, 10_000 + i, [], [])
            for i in range(args.clients)
        ]
    )  # warm-up, not recorded
    t0 = time.perf_counter()
    stop = t0 + duration
    await asyncio.gather(*[one_client(port, args.items, stop, i, lat, errs) for i in range(args.clients)])
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1e3
    pct = {f"p{p}_ms": round(float(np.percentile(ms, p)), 2) for p in (50, 90, 99)} if len(ms) else {}
    return {
        **pct,
        "requests": len(lat),
        "rps": round(len(lat) / wall, 1),
        "errors": len(errs),
        "first_errors": errs[:3],
    }


def phase(args: argparse.Namespace, kind: str, duration: float) -> dict:
    t0 = time.perf_counter()
    proc, port = start_server(args, kind)
    startup = time.perf_counter() - t0
    try:
        report = health(port)["index"]
        server0, client0 = cpu_seconds(proc.pid), time.process_time()
        stats = asyncio.run(load(port, args, duration))
        n = max(stats["requests"], 1)
        stats["server_cpu_ms_per_req"] = round((cpu_seconds(proc.pid) - server0) * 1e3 / n, 3)
        stats["client_cpu_ms_per_req"] = round((time.process_time() - client0) * 1e3 / n, 3)
        stats["batching"] = health(port).get("batching")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "phase": kind,
        "items": args.items,
        "dim": args.dim,
        "clients": args.clients,
        "duration_s": duration,
        "startup_s": round(startup, 1),
        **stats,
        "index": report,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds of load for the approximate index")
    ap.add_argument("--baseline-duration", type=float, default=None, help="for exact (default: --duration)")
    ap.add_argument("--index", default="ivf", choices=["ivf", "hnsw", "exact"])
    ap.add_argument("--no-baseline", action="store_true", help="skip the exact-index phase")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--codes", default="sq8", choices=["flat", "sq8", "fp16"], help="IVF vector codes")
    ap.add_argument(
        "--server-cpus",
        default="",
        help="pin the server to these CPUs (e.g. 0,1); the load generator "
        "then runs on the others, so the server owns its 2 cores as in the bar",
    )
    ap.add_argument("--search-threads", type=int, default=1, help="server threads per search")
    ap.add_argument(
        "--switch-interval-ms",
        type=float,
        default=SWITCH_INTERVAL_S * 1e3,
        help="the server's GIL switch interval (CPython's default is 5)",
    )
    ap.add_argument("--startup-timeout", type=float, default=900.0)
    ap.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_child:
        return serve_child(args)
    if args.server_cpus:
        pinned = {int(c) for c in args.server_cpus.split(",")}
        others = set(os.sched_getaffinity(0)) - pinned
        if others:
            os.sched_setaffinity(0, others)
    print(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "server_cpus": args.server_cpus or "shared with the load generator",
                    "loadavg_1m": os.getloadavg()[0],
                    "python": sys.version.split()[0],
                }
            }
        ),
        flush=True,
    )
    result = phase(args, args.index, args.duration)
    print(json.dumps(result), flush=True)
    if not args.no_baseline and args.index != "exact":
        base = phase(args, "exact", args.baseline_duration or args.duration)
        print(json.dumps(base), flush=True)
        print(
            json.dumps(
                {
                    "ratio": {
                        "p50_exact_over_approx": round(base["p50_ms"] / result["p50_ms"], 2),
                        "p99_exact_over_approx": round(base["p99_ms"] / result["p99_ms"], 2),
                        "rps_approx_over_exact": round(result["rps"] / max(base["rps"], 1e-9), 2),
                    }
                }
            ),
            flush=True,
        )
    bar = {
        "p50_ms<=10": result.get("p50_ms", 1e9) <= 10,
        "p99_ms<=50": result.get("p99_ms", 1e9) <= 50,
        "errors==0": result["errors"] == 0,
        "recall@10>=0.95": result["index"].get("recall@10", 0) >= 0.95,
    }
    print(json.dumps({"bar": bar}), flush=True)


if __name__ == "__main__":
    main()
