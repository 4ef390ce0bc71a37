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

`--model text` puts the real model in the loop (issue 24): a paper-1M text run, briefly trained on
CPU on a synthetic world, serves that world's whole catalog (`--items`) encoded by its own text
encoder; every request's history goes through the transformer (micro-batched by the server) before
the FAISS search, and the histories are the world's user histories (`serve_model.py`). The load is
then open-loop (`serve_load.py`): the benchmark searches for the highest request rate that keeps
p50 ≤ 10 ms, p99 ≤ 50 ms and 0 errors, and reports recall@10 against exact search on the request
histories themselves. Before the load, `--split-requests` requests go one at a time and the
server's per-stage times (its `Server-Timing` header: parse, queue, resolve, items, transformer,
search, build, json, and the time outside the app) are printed as a `split` line; every rate trial
carries the same split (`split_ms`). `--engine int8|jit` picks the query engine
(`scalerec.serve.query_engine`); recall is then measured against exact search of float32 queries.

    python benchmarks/serve.py --model text --items 50000 --duration 3 --no-baseline   # small, here
    taskset -c 2-15 python benchmarks/serve.py --model text --items 1000000 --server-cpus 0,1 \
        --duration 20 --no-baseline                 # the bar (server pinned to 2 cores)

With `--run RUN --catalog DIR --catalog-tokens DIR --histories FILE` it serves a run trained elsewhere
(on a GPU: benchmarks/device/serve_rank_call.sh) over a catalog `serve_world.py` built, skipping the
world's set-up.
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
from pathlib import Path

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
    index = IndexConfig(
        kind=args.index, seed=args.seed, ivf_codes=args.codes, target_recall=args.target_recall,
        ivf_refine=args.refine, refine_k_factor=args.k_factor, pq_m=args.pq_m, ivf_lists=args.lists,
        **({"recall_queries": args.recall_queries} if args.recall_queries else {}),
    )
    extra = {}
    if args.model == "text":
        import torch

        from scalerec.serve.run_encoder import load_items, load_recommender
        from serve_model import load_histories, request_recall

        torch.set_num_threads(len(os.sched_getaffinity(0)))  # the catalog is encoded on every core
        cfg = ServeConfig(index=index, max_history=args.history_len, server_timing=True)
        histories = load_histories(args.histories, args.history_len)
        sample, tune = histories[:500], histories[500:]  # recall is measured on histories not tuned on
        rows = {it.key: i + 1 for i, it in enumerate(load_items(args.catalog))}
        rec = load_recommender(args.run, cfg, dataset_dir=args.catalog, tokens_dir=args.catalog_tokens,
                               dtype=args.dtype, tune_histories=[[rows[k] for k in h] for h in tune],
                               engine=args.engine)
        if args.nprobe:
            rec.index.set_width(args.nprobe)
        extra = {"request_recall@10": request_recall(rec, sample), "model": rec.encoder.meta["model_config"]}
    else:
        encoder = ClusteredEncoder(args.items, args.dim, seed=args.seed)
        rec = Recommender(encoder, synthetic_items(args.items), ServeConfig(index=index, server_timing=True))
    set_search_threads(args.search_threads)
    if args.model == "text":
        torch.set_num_threads(args.torch_threads)
    ready = {"child": "ready", "setup_s": round(time.perf_counter() - t0, 1), **extra}
    print(json.dumps(ready), flush=True)
    (Path(args.ready_file).write_text(json.dumps(ready)) if args.ready_file else None)
    serve(create_app(rec), "127.0.0.1", args.port, args.switch_interval_ms / 1e3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, kind: str) -> tuple[subprocess.Popen, int, dict]:
    """Start the server subprocess with this run's settings; returns it, its port and its ready line."""
    port = free_port()
    ready_file = Path(args.workdir) / f"ready-{port}.json"
    child = {"--index": kind, "--port": port, "--ready-file": ready_file}
    for name in CHILD_OPTIONS:
        child.setdefault(f"--{name.replace('_', '-')}", getattr(args, name))
    cmd = [sys.executable, __file__, "--serve-child"]
    for flag, value in child.items():
        cmd += [flag, str(value if value is not None else "")]
    proc = subprocess.Popen(cmd, stdout=sys.stderr)
    deadline = time.time() + args.startup_timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with code {proc.returncode} during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, port, json.loads(ready_file.read_text())
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start in time")


CHILD_OPTIONS = (
    "model", "items", "dim", "seed", "codes", "refine", "k_factor", "pq_m", "lists",
    "server_cpus", "search_threads", "switch_interval_ms",
    "target_recall", "recall_queries", "torch_threads", "dtype", "history_len", "engine", "nprobe",
    "run", "catalog", "catalog_tokens", "histories",
)
"""Settings the server subprocess gets from the benchmark's own command line."""


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
    from serve_load import answer_ok, exchange, request_bytes

    rng = random.Random(seed)
    conn = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            request = request_bytes([[f"I{rng.randint(1, n_items):07d}" for _ in range(5)]], 10)[0]
            t0 = time.perf_counter()
            status_line, payload, _ = await exchange(conn, request)
            lat.append(time.perf_counter() - t0)
            if not answer_ok(status_line, payload, 10):
                errs.append(status_line.decode(errors="replace").strip())
    except (OSError, asyncio.IncompleteReadError) as exc:
        errs.append(repr(exc))
    finally:
        conn[1].close()


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


def request_histories(args: argparse.Namespace) -> list[list[str]]:
    """What the load sends: the world's user histories (text model) or 5 random synthetic keys."""
    if args.model == "text":
        from serve_model import load_histories

        return load_histories(args.histories, args.history_len)
    rng = random.Random(args.seed)
    return [[f"I{rng.randint(1, args.items):07d}" for _ in range(5)] for _ in range(20_000)]


def drive(args: argparse.Namespace, port: int, duration: float) -> dict:
    """Closed-loop clients, or (`--rate-search`) the open-loop search for the highest rate in the bar."""
    if not args.rate_search:
        return asyncio.run(load(port, args, duration))
    from serve_load import find_rate, meets_bar, open_loop, request_bytes, trial_seconds

    requests = request_bytes(request_histories(args), 10)

    def trial(rate: float) -> dict:
        seconds = trial_seconds(rate, duration, args.min_requests)
        return asyncio.run(open_loop(port, requests, rate, seconds, 10, args.seed))

    asyncio.run(open_loop(port, requests, args.start_rate, 1.0, 10, args.seed + 1))  # warm-up
    search = find_rate(trial, args.start_rate, args.rate_steps, meets_bar)
    best = search["best"] or {}
    return {**{k: best.get(k) for k in ("p50_ms", "p90_ms", "p99_ms", "errors")},
            "max_rps_in_bar": best.get("offered_rps"), "first_failing_rps": search["first_failing_rps"],
            "requests": sum(t["requests"] for t in search["trials"]), "trials": search["trials"]}


def single_requests(args: argparse.Namespace, port: int) -> dict:
    """`--split-requests` requests one at a time (after 20 unrecorded): the per-stage split of one
    request's time on the server path, with nothing queued (printed as a `split` line)."""
    if not args.split_requests:
        return {}
    from serve_load import request_bytes, sequential

    requests = request_bytes(request_histories(args), 10)
    asyncio.run(sequential(port, requests[::-1], 20, 10))
    split = asyncio.run(sequential(port, requests, args.split_requests, 10))
    print(json.dumps({"split": split}), flush=True)
    return split


def phase(args: argparse.Namespace, kind: str, duration: float) -> dict:
    t0 = time.perf_counter()
    proc, port, ready = start_server(args, kind)
    startup = time.perf_counter() - t0
    try:
        report = health(port)["index"]
        split = single_requests(args, port)
        server0, client0 = cpu_seconds(proc.pid), time.process_time()
        stats = drive(args, port, duration)
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
        "model": args.model,
        "items": args.items,
        "dim": args.dim if args.model == "clustered" else report.get("dim"),
        "load": "open-loop rate search" if args.rate_search else f"{args.clients} closed-loop clients",
        "duration_s": duration,
        "startup_s": round(startup, 1),
        "server": {k: v for k, v in ready.items() if k != "child"},
        "split": split,
        **stats,
        "index": report,
        "loadavg_1m_after": os.getloadavg()[0],
    }


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="clustered", choices=["clustered", "text"],
                    help="clustered: model-free synthetic vectors; text: a trained text model in the loop")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256, help="clustered mode: vector width")
    ap.add_argument("--clients", type=int, default=32, help="closed-loop clients (without --rate-search)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds of load per phase / per rate trial")
    ap.add_argument("--baseline-duration", type=float, default=None, help="for exact (default: --duration)")
    ap.add_argument("--index", default="ivf", choices=["ivf", "hnsw", "exact"])
    ap.add_argument("--no-baseline", action="store_true", help="skip the exact-index phase")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--codes", default=None, choices=["flat", "sq8", "fp16", "pq4fs"],
                    help="IVF vector codes (default: sq8; fp16 in text mode, where sq8 caps recall@10 "
                    "below 0.95 on the briefly trained model's tightly clustered item vectors; pq4fs: "
                    "4-bit fast-scan PQ re-ranked exactly, see benchmarks/serve_index.py)")
    ap.add_argument("--refine", default="auto", choices=["auto", "none", "flat", "fp16"],
                    help="IVF exact re-rank of k x k_factor candidates (auto: flat for pq4fs, else none)")
    ap.add_argument("--k-factor", type=int, default=0, help="re-rank factor (0 = tuned to the target)")
    ap.add_argument("--pq-m", type=int, default=0, help="pq4fs sub-quantizers (0 = dim/2)")
    ap.add_argument("--lists", type=int, default=0, help="IVF lists (0 = 4 sqrt(items))")
    ap.add_argument("--target-recall", type=float, default=0.95, help="recall@10 the index is tuned to")
    ap.add_argument("--recall-queries", type=int, default=0,
                    help="histories the index is tuned on (0 = index.recall_queries' default)")
    ap.add_argument("--server-cpus", default="", help="pin the server to these CPUs (e.g. 0,1); the load "
                    "generator then runs on the others, so the server owns its 2 cores as in the bar")
    ap.add_argument("--search-threads", type=int, default=1, help="server threads per search")
    ap.add_argument("--torch-threads", type=int, default=1, help="text mode: torch threads per forward")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                    help="text mode: precision of the transformer on histories")
    ap.add_argument("--engine", default="eager", choices=["eager", "jit", "int8"],
                    help="text mode: query engine of the transformer (scalerec.serve.query_engine)")
    ap.add_argument("--nprobe", type=int, default=0, help="serve at this IVF probe width instead of "
                    "the tuned one (request recall is measured at it); 0 = tuned")
    ap.add_argument("--split-requests", type=int, default=200,
                    help="requests sent one at a time for the per-stage split (0 = none)")
    ap.add_argument("--switch-interval-ms", type=float, default=SWITCH_INTERVAL_S * 1e3,
                    help="the server's GIL switch interval (CPython's default is 5)")
    ap.add_argument("--rate-search", action="store_true",
                    help="open-loop load: highest request rate within the bar (default in text mode)")
    ap.add_argument("--start-rate", type=float, default=50.0, help="first offered rate of the search (req/s)")
    ap.add_argument("--rate-steps", type=int, default=12, help="most rate trials")
    ap.add_argument("--min-requests", type=int, default=100,
                    help="a rate trial lasts until this many requests were offered (>= --duration)")
    ap.add_argument("--workdir", default="/tmp/scalerec-serve-bench", help="text mode: world, run, catalog")
    ap.add_argument("--interactions", type=int, default=0, help="text mode: world size (default 3 x items)")
    ap.add_argument("--size", default="paper-1M", help="text mode: model size from the ladder")
    ap.add_argument("--train-steps", type=int, default=20, help="text mode: CPU training steps")
    ap.add_argument("--train-subset", default="200K",
                    help="text mode: nested subset of the world the model trains on (interactions)")
    ap.add_argument("--history-len", type=int, default=50, help="text mode: most recent items sent")
    ap.add_argument("--startup-timeout", type=float, default=1800.0)
    ap.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--run", default=None, help="text mode: serve this finished run instead of building "
                    "the world (then --catalog, --catalog-tokens and --histories too; serve_world.py "
                    "writes them)")
    ap.add_argument("--catalog", default=None, help="text mode with --run: dir holding items.parquet")
    ap.add_argument("--catalog-tokens", default=None, help="text mode with --run: the catalog's token table")
    ap.add_argument("--histories", default=None, help="text mode with --run: request histories (JSON)")
    ap.add_argument("--ready-file", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    given = [args.run, args.catalog, args.catalog_tokens, args.histories]
    if not args.serve_child and any(given) and not all(given):
        ap.error("--run, --catalog, --catalog-tokens and --histories go together")
    args.rate_search = args.rate_search or args.model == "text"
    args.codes = args.codes or ("fp16" if args.model == "text" else "sq8")
    return args


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        status = ["git", "status", "--porcelain", "--untracked-files=no"]
        dirty = subprocess.run(status, capture_output=True, text=True).stdout
        return out.stdout.strip() + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def hyperthread_siblings(cpus: set[int], sysfs: Path = Path("/sys/devices/system/cpu")) -> set[int]:
    """The other logical CPUs that share a physical core with `cpus` (Linux sysfs; empty elsewhere)."""
    out: set[int] = set()
    for cpu in cpus:
        path = sysfs / f"cpu{cpu}" / "topology" / "thread_siblings_list"
        if not path.is_file():
            continue
        for part in path.read_text().strip().split(","):
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    return out - cpus


def load_generator_cpus(
    server: set[int], allowed: set[int], sysfs: Path = Path("/sys/devices/system/cpu")
) -> set[int]:
    """CPUs for the load generator: every allowed one except the server's and their hyperthread siblings, so
    the 2 pinned cores are 2 whole cores (the generator on a sibling would share their execution units);
    the siblings are used only when nothing else is left."""
    others = allowed - server
    return (others - hyperthread_siblings(server, sysfs)) or others


def main() -> None:
    args = parse_args()
    if args.serve_child:
        return serve_child(args)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    load_cpus: list[int] = []
    pinned = {int(c) for c in args.server_cpus.split(",")} if args.server_cpus else set()
    if pinned:
        load_cpus = sorted(load_generator_cpus(pinned, set(os.sched_getaffinity(0))))
        if load_cpus:
            os.sched_setaffinity(0, set(load_cpus))
    machine = {"cpus": os.cpu_count(), "server_cpus": args.server_cpus or "shared with the load generator",
               "server_cpu_siblings": sorted(hyperthread_siblings(pinned)), "load_generator_cpus": load_cpus,
               "loadavg_1m": os.getloadavg()[0], "python": sys.version.split()[0]}
    record = {"command": " ".join([os.path.basename(sys.executable), *sys.argv]), "commit": git_commit()}
    print(json.dumps({"machine": machine, **record}), flush=True)
    if args.model == "text" and not args.run:
        from serve_model import build_world

        world = build_world(Path(args.workdir), args.items, args.interactions or 3 * args.items,
                            args.seed, args.size, args.train_steps, args.train_subset)
        args.run, args.catalog = world["run"], world["catalog"]
        args.catalog_tokens, args.histories = world["catalog_tokens"], world["histories"]
        print(json.dumps({"world": world}, default=str), flush=True)
    result = phase(args, args.index, args.duration)
    print(json.dumps(result), flush=True)
    if not args.no_baseline and args.index != "exact":
        base = phase(args, "exact", args.baseline_duration or args.duration)
        print(json.dumps(base), flush=True)
        keys = ("p50_ms", "p99_ms", "rps", "max_rps_in_bar")
        print(json.dumps({"exact_baseline": {k: base.get(k) for k in keys}}), flush=True)
    recall = result["server"].get("request_recall@10", result["index"].get("recall@10", 0))
    bar = {
        "p50_ms<=10": (result.get("p50_ms") or 1e9) <= 10,
        "p99_ms<=50": (result.get("p99_ms") or 1e9) <= 50,
        "errors==0": result.get("errors") == 0,
        "recall@10>=0.95": recall >= 0.95,
    }
    if args.rate_search:
        bar["max_rps_in_bar"] = result.get("max_rps_in_bar")
    print(json.dumps({"bar": bar, "loadavg_1m_end": os.getloadavg()[0], **record}), flush=True)


if __name__ == "__main__":
    main()
