"""Index micro-benchmark: single-query search latency of IVF variants at the same recall, one core.

The serving split (issue 24 item 2) put FAISS search at ~4.8 ms of a ~10 ms request (IVF4000 with
fp16 codes, nprobe 233 for recall@10 0.96 on 1M items). This builds every `--variants` index over
the same item vectors, tunes each to every `--targets` recall on the same held-out-free tuning
queries (`ItemIndex.tune`, as the server does), and then, per target:

- recall@10 on other queries (`--eval-queries`) against exact search of the reference queries;
- p50/p99 of `ItemIndex.search(one query, k=10, exclude=its history)` (the server's call), timed
  on one thread, variants interleaved in rounds so drift on a shared core hits them alike;
- the ratio p50(variant) / p50(first variant) measured in this run;

plus build time and the memory each index added (RSS). Vectors are a trained text run's catalog
and its users' histories (`--run`, the served path: `--engine int8` queries, float32 truth), or
clustered synthetic unit vectors (`--synthetic`, `ClusteredEncoder`). One JSON line per result.

    taskset -c 1 python benchmarks/serve_index.py --synthetic --items 200000 --dim 64   # smoke
    taskset -c 1 python benchmarks/serve_index.py --run RUN --catalog W/catalog \\
        --catalog-tokens W/catalog_tok --histories W/histories.json --cache W/vectors.npz
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from scalerec.serve.index import IndexConfig, ItemIndex, exact_topk, hit_rows, recall_at, set_search_threads


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc), in MiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def synthetic_data(args: argparse.Namespace) -> dict:
    """Clustered unit vectors; queries are means of 5 random items (the clustered serving load)."""
    from scalerec.serve.synthetic import ClusteredEncoder

    enc = ClusteredEncoder(args.items, args.dim, seed=args.seed)
    rng = np.random.default_rng(args.seed + 1)
    n_q = args.tune_queries + args.eval_queries
    hist = rng.integers(1, args.items + 1, size=(n_q, 5))
    queries = enc.encode_histories(hist.tolist())
    return {
        "items": enc.vectors,
        "queries": queries,
        "truth_queries": queries,
        "exclude": [(h - 1).tolist() for h in hist],
        "source": f"synthetic clustered {args.items}x{args.dim}",
    }


def run_data(args: argparse.Namespace) -> dict:
    """A trained run's catalog vectors and its users' histories through the served query engine
    (`--engine`) and through the float32 model (the truth), as `serve.py --model text` serves them."""
    import torch

    from scalerec.serve.run_encoder import RunEncoder, load_items

    torch.set_num_threads(1)
    enc = RunEncoder(
        args.run,
        tokens_dir=args.catalog_tokens,
        new_catalog=True,
        engine=args.engine,
        allow_unfinished=args.allow_unfinished,
    )
    t0 = time.perf_counter()
    items = np.ascontiguousarray(enc.encode_catalog(), dtype=np.float32)
    rows = {it.key: i for i, it in enumerate(load_items(args.catalog))}
    n_q = args.tune_queries + args.eval_queries
    hists = [[rows[k] for k in h[-50:]] for h in json.loads(Path(args.histories).read_text()) if h]
    rng = np.random.default_rng(args.seed)
    hists = [hists[i] for i in rng.choice(len(hists), min(n_q, len(hists)), replace=False)]
    ids = [[r + 1 for r in h] for h in hists]
    queries = np.concatenate([enc.encode_histories(ids[i : i + 64]) for i in range(0, len(ids), 64)])
    truth_q = [enc.reference_histories(ids[i : i + 64]) for i in range(0, len(ids), 64)]
    truth_q = queries if truth_q[0] is None else np.concatenate(truth_q)
    print(json.dumps({"encoded_s": round(time.perf_counter() - t0, 1), "items": len(items)}), flush=True)
    return {
        "items": items,
        "queries": queries,
        "truth_queries": truth_q,
        "exclude": hists,
        "source": f"run {args.run} engine {args.engine}, catalog {args.catalog}, {len(hists)} histories",
    }


def load_data(args: argparse.Namespace) -> dict:
    """The vectors, from `--cache` when it exists (written after encoding when named)."""
    if args.cache and Path(args.cache).is_file():
        z = np.load(args.cache, allow_pickle=False)
        lens = z["exclude_len"]
        flat = np.split(z["exclude_flat"], np.cumsum(lens)[:-1])
        return {
            "items": z["items"],
            "queries": z["queries"],
            "truth_queries": z["truth_queries"],
            "exclude": [e.tolist() for e in flat],
            "source": str(z["source"]) + f" (cache {args.cache})",
        }
    data = synthetic_data(args) if args.synthetic else run_data(args)
    if args.cache:
        tmp = Path(args.cache).with_suffix(".tmp.npz")
        np.savez(
            tmp,
            items=data["items"],
            queries=data["queries"],
            truth_queries=data["truth_queries"],
            exclude_flat=np.array([r for e in data["exclude"] for r in e], dtype=np.int64),
            exclude_len=np.array([len(e) for e in data["exclude"]]),
            source=np.array(data["source"]),
        )
        tmp.rename(args.cache)
    return data


def variant_config(spec: str, args: argparse.Namespace) -> IndexConfig:
    """'fp16', 'pq4fs', 'pq4fs:fp16' (codes[:refine]), 'pq4fs/64' (pq_m 64) → an IVF IndexConfig."""
    codes, _, refine = spec.partition(":")
    codes, _, m = codes.partition("/")
    return IndexConfig(
        kind="ivf",
        ivf_codes=codes,
        ivf_refine=refine or "auto",
        pq_m=int(m or 0),
        ivf_lists=args.lists,
        target_recall=args.targets[0],
        recall_queries=args.tune_queries,
        seed=args.seed,
    )


def time_rounds(indexes: dict, queries: np.ndarray, exclude: list, rounds: int) -> dict[str, np.ndarray]:
    """ms per single-query search, per variant; the queries are split into `rounds` chunks and each
    chunk runs on every variant in turn, so slow spells of a shared core fall on all of them."""
    lat: dict[str, list[float]] = {name: [] for name in indexes}
    for chunk in np.array_split(np.arange(len(queries)), rounds):
        for name, index in indexes.items():
            for i in chunk:
                t = time.perf_counter()
                index.search(queries[i : i + 1], 10, [exclude[i]])
                lat[name].append((time.perf_counter() - t) * 1e3)
    return {name: np.array(v) for name, v in lat.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", action="store_true", help="clustered synthetic vectors instead of --run")
    ap.add_argument("--items", type=int, default=1_000_000, help="synthetic: catalog size")
    ap.add_argument("--dim", type=int, default=256, help="synthetic: vector width")
    ap.add_argument("--run", default=None, help="trained text run dir (the served model)")
    ap.add_argument("--catalog", default=None, help="dir holding the served items.parquet")
    ap.add_argument("--catalog-tokens", default=None, help="the catalog's token table (run's tokenizer)")
    ap.add_argument("--histories", default=None, help="request histories JSON (item keys)")
    ap.add_argument("--allow-unfinished", action="store_true", help="a run stopped before final.json")
    ap.add_argument("--engine", default="int8", choices=["eager", "jit", "int8"], help="query engine")
    ap.add_argument("--cache", default=None, help="npz of the vectors: read if present, else written")
    ap.add_argument("--variants", default="fp16,pq4fs", help="comma list codes[/pq_m][:refine]; first = base")
    ap.add_argument("--targets", default="0.95,0.96", help="recall@10 targets, comma list")
    ap.add_argument("--lists", type=int, default=4000, help="IVF lists (0 = 4 sqrt(n))")
    ap.add_argument("--tune-queries", type=int, default=200, help="queries the tuner sees")
    ap.add_argument("--eval-queries", type=int, default=1000, help="other queries: recall and timing")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved timing rounds")
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to this core")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    have_run = all((args.run, args.catalog, args.catalog_tokens, args.histories))
    if not (args.synthetic or have_run or (args.cache and Path(args.cache).is_file())):
        ap.error("give --synthetic, or --run --catalog --catalog-tokens --histories, or an existing --cache")
    args.targets = [float(t) for t in args.targets.split(",")]
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    set_search_threads(1)  # builds use every core this process may use; searches one thread
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    print(
        json.dumps(
            {
                "command": " ".join(sys.argv),
                "commit": commit.strip(),
                "cpus": sorted(os.sched_getaffinity(0)),
                "loadavg_1m": os.getloadavg()[0],
            }
        ),
        flush=True,
    )

    data = load_data(args)
    t, e = args.tune_queries, args.eval_queries
    items, queries, truth_q, exclude = data["items"], data["queries"], data["truth_queries"], data["exclude"]
    truth = exact_topk(truth_q[: t + e], items, 10)[1]
    print(
        json.dumps(
            {
                "source": data["source"],
                "items": items.shape,
                "tune_queries": t,
                "eval_queries": len(queries) - t,
                "mean_history": float(np.mean([len(x) for x in exclude])),
            }
        ),
        flush=True,
    )
    keys = [str(i) for i in range(len(items))]
    indexes: dict[str, ItemIndex] = {}
    for spec in args.variants.split(","):
        gc.collect()
        before, t0 = rss_mb(), time.perf_counter()
        index = ItemIndex.build(keys, items, variant_config(spec, args), queries[:t], truth_q[:t])
        indexes[spec] = index
        print(
            json.dumps(
                {
                    "built": spec,
                    "build_s": round(time.perf_counter() - t0, 1),
                    "rss_added_mb": round(rss_mb() - before),
                    "report": index.report,
                }
            ),
            flush=True,
        )
    set_search_threads(1)
    base = next(iter(indexes))
    for target in args.targets:
        for index in indexes.values():
            index.tune(queries[:t], truth[:t], target)
        lat = time_rounds(indexes, queries[t : t + e], exclude[t : t + e], args.rounds)
        p50 = {name: float(np.percentile(v, 50)) for name, v in lat.items()}
        for name, index in indexes.items():
            found = hit_rows(index.search(queries[t : t + e], 10), 10)
            print(
                json.dumps(
                    {
                        "target": target,
                        "variant": name,
                        "factory": index.report["factory"],
                        "nprobe": index.report["nprobe"],
                        "k_factor": index.report.get("k_factor"),
                        "tune_recall@10": index.report["recall@10"],
                        "eval_recall@10": round(recall_at(found, truth[t : t + e]), 4),
                        "p50_ms": round(p50[name], 3),
                        "p99_ms": round(float(np.percentile(lat[name], 99)), 3),
                        "mean_ms": round(float(lat[name].mean()), 3),
                        "timed": len(lat[name]),
                        f"p50_ratio_vs_{base}": round(p50[name] / p50[base], 3),
                    }
                ),
                flush=True,
            )
    print(json.dumps({"end": True, "loadavg_1m": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main()
