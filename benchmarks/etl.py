"""ETL throughput, memory and linearity on a synthetic Amazon-2018-format dump.

Writes a synthetic ratings CSV + metadata JSON (gz) of the given size, then runs
`scalerec.data.build.prepare.prepare` with nested subsets in a fresh child process (so peak RSS is the
ETL's alone) and prints one JSON line per size: wall and CPU seconds, rows/s, peak RSS. With
`--scale-check` (default on) it repeats at 2x the size and prints the ratio of times against the
1x run measured in the same invocation (linear cost => ratio ~2). Peak RSS is reported twice:
by the child itself (`peak_rss_gib`) and by the parent from the child's rusage (`os.wait4`,
`child_peak_rss_gib`, which covers every thread and anything the child forked). The dump is written
by its own child too (streamed: `synth` events report its peak RSS), so this parent stays small: on
Linux a child's ru_maxrss starts at its parent's RSS high-water mark (fork copies it, exec keeps it),
which is how a 4.4 GiB in-process generator once showed up as the ETL's peak. `peak_rss_gib` is the
child's own VmHWM (its memory since exec), immune to that.
`--rss-trace` adds `rss_by_step` and `s_by_step` to the prepare event: a thread samples the child's
RSS every 0.1 s and keeps the peak (GiB) and the time (s, approximate) per step, a step being the
chain of `scalerec.data` functions the main thread is in (`prepare_sharded>write_items_table`);
the first place to look when a peak or the wall time grows.
`--shard-above-rows` sets `PrepareConfig.shard_above_rows` (0: force the on-disk sharded path).
`--meta-only chunked|whole` measures metadata loading alone on the dump's metadata file, in a child:
`chunked` is what `prepare` does (`scalerec.data.ingest.meta.read_meta`), `whole` the one-table reference
(`clean_items(read_items(...))`).

    python benchmarks/etl.py                                   # small (2M ratings), quick
    python benchmarks/etl.py --ratings 23300000 --meta 1500000 --subsets 100K,1M,10M   # the bar
    python benchmarks/etl.py --ratings 233000000 --meta 15000000 --subsets 100K,1M,10M,100M \
        --no-scale-check --work /work/etl_full                      # the full 2018 dump (~17 GB disk)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _hwm_gib() -> float:
    """This process's peak RSS since exec (VmHWM), in GiB; ru_maxrss can include the parent's."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _rss_gib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def _step_of(frame: object) -> str:
    """The `scalerec.data` functions on a stack, outermost first, below `prepare` (`a>b>c`)."""
    import traceback

    names = [
        f.name
        for f in traceback.extract_stack(frame)  # type: ignore[arg-type]
        if f"{os.sep}scalerec{os.sep}data{os.sep}" in f.filename and f.name != "prepare"
    ]
    return ">".join(names[:4]) or "other"


def _trace_rss(every_s: float = 0.1) -> tuple[dict[str, float], dict[str, float]]:
    """Peak RSS (GiB) and seconds spent per step of the main thread, sampled in a daemon thread
    (see the docstring)."""
    import threading

    peaks: dict[str, float] = {}
    secs: dict[str, float] = {}
    main = threading.main_thread().ident

    def loop() -> None:
        last = time.perf_counter()
        while True:
            frame = sys._current_frames().get(main or 0)
            rss = _rss_gib()
            step = _step_of(frame) if frame is not None else "other"
            peaks[step] = max(peaks.get(step, 0.0), rss)
            now = time.perf_counter()
            secs[step] = secs.get(step, 0.0) + now - last
            last = now
            time.sleep(every_s)

    threading.Thread(target=loop, daemon=True).start()
    return peaks, secs


def _du_gib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**30


def _synth_child(args: argparse.Namespace) -> None:
    """Write the synthetic dump (streamed) in this process and print its measurements."""
    from scalerec.data.ingest.synthetic_formats import synthesize

    t0, c0 = time.perf_counter(), time.process_time()
    paths = synthesize(
        "amazon2018", args.ratings, args.out, seed=args.seed, n_items=int(args.meta / 0.99) + 1
    )
    row = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "peak_rss_gib": _hwm_gib()}
    print(json.dumps({**row, "paths": {k: str(v) for k, v in paths.items()}}))


def _run_child(cmd: list[str]) -> tuple[dict, float]:
    """Run one measuring child; its last stdout line (JSON) and its rusage peak RSS (GiB)."""
    with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        out_f.seek(0)
        err_f.seek(0)
        stdout, stderr = out_f.read(), err_f.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[2:4]} failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), round(usage.ru_maxrss / 2**20, 3)


def _make_dump(work: Path, n_ratings: int, n_meta: int, seed: int) -> dict[str, str]:
    raw = work / f"raw_{n_ratings}_{n_meta}_{seed}"
    stamp = raw / "DONE"
    if not stamp.exists():
        shutil.rmtree(raw, ignore_errors=True)
        load = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--_synth", "--ratings", str(n_ratings), "--meta", str(n_meta)]
        row, child_rss = _run_child(cmd + ["--seed", str(seed), "--out", str(raw)])
        stamp.write_text(json.dumps(row.pop("paths")))
        row.update(ratings=n_ratings, meta_lines=n_meta, child_peak_rss_gib=child_rss, dump_gib=_du_gib(raw))
        print(
            json.dumps({"event": "synth", **row, "load_avg_1m_before": load, "cores": os.cpu_count()}),
            flush=True,
        )
    return json.loads(stamp.read_text())


def _meta_child(args: argparse.Namespace) -> None:
    """Load and clean the metadata file only, in this process, and print its measurements."""
    from scalerec.data.ingest.meta import read_meta
    from scalerec.data.ingest.parse import ParseLog
    from scalerec.data.ingest.sources import read_items
    from scalerec.data.ingest.titles import clean_items

    t0, c0 = time.perf_counter(), time.process_time()
    log = ParseLog("lenient")
    if args.meta_only == "whole":
        _, counts = clean_items(read_items("amazon2018", Path(args.meta_file), log))
    else:
        with tempfile.TemporaryDirectory(dir=args.out) as spill:
            counts = read_meta("amazon2018", [Path(args.meta_file)], log, Path(spill)).counts
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_rss_gib": _hwm_gib(),
                "ru_maxrss_gib": ru.ru_maxrss / 2**20,
                **counts,
            }
        )
    )


def _watch_disk(out: Path) -> dict[str, float]:
    """Sample, every second in a daemon thread, the bytes under `out` and its temporary sibling
    (`.<name>.tmp-<pid>`, where prepare builds the dataset and its shards); the max is kept."""
    import threading

    peak = {"gib": 0.0}

    def loop() -> None:
        while True:
            dirs = [out, *out.parent.glob(f".{out.name}.tmp-*")]
            with contextlib.suppress(OSError):  # a file vanished mid-walk
                peak["gib"] = max(peak["gib"], sum(_du_gib(d) for d in dirs if d.exists()))
            time.sleep(1.0)

    threading.Thread(target=loop, daemon=True).start()
    return peak


def _child(args: argparse.Namespace) -> None:
    """Run one prepare in this process and print its measurements."""
    from scalerec.data.build.prepare import PrepareConfig, prepare

    if args.meta_only:
        _meta_child(args)
        return
    disk = _watch_disk(Path(args.out))
    steps = _trace_rss() if args.rss_trace else None
    t0, c0 = time.perf_counter(), time.process_time()
    card = prepare(
        PrepareConfig(
            source="amazon2018",
            ratings=[args.ratings_file],
            meta=[args.meta_file],
            out=Path(args.out),
            subsets=[s for s in args.subsets.split(",") if s],
            **({} if args.shard_above_rows is None else {"shard_above_rows": args.shard_above_rows}),
        )
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_rss_gib": _hwm_gib(),
                "ru_maxrss_gib": ru.ru_maxrss / 2**20,
                "dataset_gib": _du_gib(Path(args.out)),
                "peak_disk_gib": max(disk["gib"], _du_gib(Path(args.out))),
                "n_interactions": card["n_interactions"],
                "n_users": card["n_users"],
                "n_items": card["n_items"],
                "subsets": [s["label"] for s in card["subsets"] if not s.get("skipped")],
                "subset_interactions": [s["n_interactions"] for s in card["subsets"]],
                "sharded": card["params"].get("shard_above_rows", -1) < card["source"]["rows_parsed"],
                **({} if steps is None else {"rss_by_step": _top(steps[0]), "s_by_step": _top(steps[1])}),
            }
        )
    )


def _top(by_step: dict[str, float], n: int = 16) -> dict[str, float]:
    """The `n` steps with the highest value, highest first (3 decimals)."""
    top = sorted(by_step.items(), key=lambda kv: -kv[1])[:n]
    return {k: round(v, 3) for k, v in top}


def _polars_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("polars")


def _measure(
    work: Path,
    n_ratings: int,
    n_meta: int,
    subsets: str,
    seed: int,
    shard_above_rows: int | None,
    meta_only: str | None = None,
    rss_trace: bool = False,
) -> dict:
    paths = _make_dump(work, n_ratings, n_meta, seed)
    out = work / f"ds_{n_ratings}"
    if meta_only:  # the child's scratch dir for the spilled metadata text
        out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        __file__,
        "--_child",
        "--ratings-file",
        paths["ratings"],
        "--meta-file",
        paths["meta"],
        "--out",
        str(out),
        "--subsets",
        subsets,
    ]
    if shard_above_rows is not None:
        cmd += ["--shard-above-rows", str(shard_above_rows)]
    if meta_only:
        cmd += ["--meta-only", meta_only]
    if rss_trace:
        cmd += ["--rss-trace"]
    load = os.getloadavg()[0]
    row, child_rss = _run_child(cmd)
    row.update(
        {
            "child_peak_rss_gib": child_rss,
            "polars": _polars_version(),
            "dump_gib": round(sum(Path(p).stat().st_size for p in paths.values()) / 2**30, 3),
            "load_avg_1m_before": load,
            "ratings": n_ratings,
            "meta_lines": n_meta,
            **(
                {}
                if meta_only
                else {
                    "rows_per_s": round(n_ratings / row["wall_s"]),
                    "cpu_rows_per_s": round(n_ratings / row["cpu_s"]),
                }
            ),
            "load_avg_1m": os.getloadavg()[0],
            "cores": os.cpu_count(),
        }
    )
    shutil.rmtree(out, ignore_errors=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratings", type=int, default=2_000_000, help="ratings rows in the dump")
    ap.add_argument("--meta", type=int, default=100_000, help="metadata lines in the dump")
    ap.add_argument("--subsets", default="100K,1M", help="nested subset sizes")
    ap.add_argument("--work", default="/tmp/scalerec_etl_bench", help="scratch dir (dumps are cached here)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-scale-check", action="store_true", help="skip the 2x-size run")
    ap.add_argument(
        "--shard-above-rows",
        type=int,
        default=None,
        help="PrepareConfig.shard_above_rows (default: its default)",
    )
    ap.add_argument(
        "--meta-only",
        choices=["chunked", "whole"],
        default=None,
        help="measure metadata loading alone (chunked: as prepare does it; whole: the one-table reference)",
    )
    ap.add_argument(
        "--rss-trace", action="store_true", help="report the peak RSS per prepare step (rss_by_step)"
    )
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_synth", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ratings-file", help=argparse.SUPPRESS)
    ap.add_argument("--meta-file", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        _child(args)
        return
    if args._synth:
        _synth_child(args)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.meta_only:
        row = _measure(work, args.ratings, args.meta, "", args.seed, None, args.meta_only)
        print(json.dumps({"event": f"meta_{args.meta_only}", **row}), flush=True)
        return
    trace = {"rss_trace": args.rss_trace}
    base = _measure(work, args.ratings, args.meta, args.subsets, args.seed, args.shard_above_rows, **trace)
    print(json.dumps({"event": "prepare", **base}), flush=True)
    if not args.no_scale_check:
        big = _measure(
            work, 2 * args.ratings, 2 * args.meta, args.subsets, args.seed, args.shard_above_rows, **trace
        )
        print(json.dumps({"event": "prepare", **big}), flush=True)
        print(
            json.dumps(
                {
                    "event": "scale_check",
                    "ratio_wall_2x": round(big["wall_s"] / base["wall_s"], 3),
                    "ratio_cpu_2x": round(big["cpu_s"] / base["cpu_s"], 3),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
