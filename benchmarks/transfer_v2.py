"""Transfer study v2 (issue 20): does pretraining on many domains pay off on a held-out one, and at which
target-data fraction does it stop helping? The grid is `configs/transfer/study/v2.toml`; the machinery
is `scalerec.transfer.study` (cells, plan, runner, report).

Three steps, each resumable:

    python benchmarks/transfer_v2.py --prepare-only      # CPU, needs polars: datasets + token tables
    python benchmarks/transfer_v2.py --plan              # every cell's FLOPs and minutes, the calls
    python benchmarks/transfer_v2.py --device cuda --jobs 4 --time-budget-min 8   # repeat until done
    python benchmarks/transfer_v2.py --report-only       # table + plots from what has finished

`--prepare-only` writes everything the GPU steps read under `--work` (the GPU machine has no polars):
the pooled corpus (`configs/data/pooled.toml`), per target the leave-one-domain-out pretraining corpus
(`scalerec.transfer.study.corpora`), the target itself (Beauty's S3Rec split etc., exactly as
benchmarks/accuracy.py prepares it), token tables, the nested fraction dirs, and `layout.json`.
Every run step starts no new cell after `--time-budget-min`, keeps every finished cell, prints one
JSON line per cell, and rewrites the report under `--results` at the end.

    python benchmarks/transfer_v2.py --cpu-small         # tiny end to end on 2 CPU cores (pipeline check)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # accuracy.py's dataset sources (one definition of each target)


def load_spec(path: Path, overrides: list[str]):  # -> StudySpec
    from scalerec.config import load
    from scalerec.transfer.study.cells import StudySpec

    return load(StudySpec, toml=path, overrides=overrides)


def prepare_pooled(work: Path, config: Path) -> Path:
    """`scalerec data prepare --config configs/data/pooled.toml` into `<work>/data/pooled` (paths in the
    TOML are relative to the repository root)."""
    from scalerec.config import from_dict, read_toml
    from scalerec.data.build.prepare import PrepareConfig, prepare

    out = work / "data" / "pooled"
    if (out / "card.json").is_file():
        return out
    raw = read_toml(config)
    for dom in raw.get("domains", []):
        dom["ratings"] = [str((ROOT / p).resolve()) for p in dom.get("ratings", [])]
        dom["meta"] = [str((ROOT / p).resolve()) for p in dom.get("meta", [])]
    raw["exclude_users"] = [str((ROOT / p).resolve()) for p in raw.get("exclude_users", [])]
    raw.update(out=str(out), subsets=[])
    card = prepare(from_dict(PrepareConfig, raw))
    print(
        json.dumps(
            {
                "event": "prepared",
                "dataset": "pooled",
                "users": card["n_users"],
                "items": card["n_items"],
                "interactions": card["n_interactions"],
            }
        ),
        flush=True,
    )
    return out


def _tokens(dataset: Path, out: Path, vocab_size: int) -> Path:
    from scalerec.text import build_token_table

    if not (out / "token_table.json").is_file():
        build_token_table(dataset, out, vocab_size=vocab_size)
    return out


def prepare_target(target: str, spec: Any, work: Path, pooled: Path) -> dict[str, Any]:
    """Target dataset, its pretraining corpus, token tables and fraction dirs (each skipped when present)."""
    import pyarrow.parquet as pq

    from accuracy import prepare_dataset
    from scalerec.transfer.study import corpora

    data = prepare_dataset(target, work)
    if spec.target_max_users:
        capped = work / "data" / f"{target}_cap{spec.target_max_users}"
        if not (capped / "card.json").is_file():
            corpora.cap_users(data, capped, spec.target_max_users)
        data = capped
    domains = set(pq.read_table(pooled / "items.parquet", columns=["domain"])["domain"].unique().to_pylist())
    held_out = target if target in domains else None
    corpus = work / "corpus" / target
    if not (corpus / "card.json").is_file():
        corpora.leave_domain_out(pooled, data, held_out, corpus, spec.corpus_max_users)
    fractions: dict[str, Path] = {}
    for f in spec.fractions:
        if f < 1:
            fdir = work / "fractions" / target / f"f{f:g}"
            if not (fdir / "card.json").is_file():
                corpora.fraction_dataset(data, fdir, f)
            fractions[f"{f:g}"] = fdir
    card = json.loads((corpus / "card.json").read_text())
    paths = {
        "dataset": data,
        "corpus": corpus,
        "corpus_tokens": work / "tokens" / f"corpus_{target}",
        "target_tokens": work / "tokens" / target,
    }
    return {
        **{k: str(v.relative_to(work)) for k, v in paths.items()},
        "held_out_domain": held_out,
        "fractions": {f: str(Path(d).relative_to(work)) for f, d in fractions.items()},
        "corpus_card": {k: card[k] for k in ("n_users", "n_items", "n_interactions")},
        "corpus_source": card["source"],
    }


def ensure_tokens(layout: dict[str, Any], spec: Any) -> None:
    """Build any token table the layout names and the work dir lacks (pyarrow + tokenizers, no polars),
    so the GPU machine can be given the datasets alone (they are what needs polars). Only the spec's
    targets: a call given one target's data (`--set targets=[...]`) must not need the others'."""
    for t in spec.targets:
        p = layout["targets"][t]
        _tokens(Path(p["corpus"]), Path(p["corpus_tokens"]), spec.vocab_size)
        _tokens(Path(p["dataset"]), Path(p["target_tokens"]), spec.vocab_size)


def prepare_all(spec: Any, work: Path, pooled_config: Path) -> dict[str, Any]:
    from scalerec.io import write_json

    pooled = prepare_pooled(work, pooled_config)
    layout: dict[str, Any] = {
        "pooled": str(pooled.relative_to(work)),
        "targets": {t: prepare_target(t, spec, work, pooled) for t in spec.targets},
    }
    write_json(work / "layout.json", layout)
    ensure_tokens(absolute(layout, work), spec)
    for t, p in layout["targets"].items():
        print(
            json.dumps(
                {
                    "event": "corpus",
                    "target": t,
                    "held_out": p["held_out_domain"],
                    **p["corpus_card"],
                    "shared_items_removed": p["corpus_source"]["items_shared_with_target"],
                }
            ),
            flush=True,
        )
    return layout


def absolute(layout: dict[str, Any], work: Path) -> dict[str, Any]:
    """The layout with its work-relative paths made absolute (the work dir may have moved machines)."""
    keys = ("dataset", "corpus", "corpus_tokens", "target_tokens")
    targets = {
        t: {
            **p,
            **{k: str(work / p[k]) for k in keys},
            "fractions": {f: str(work / d) for f, d in p["fractions"].items()},
        }
        for t, p in layout["targets"].items()
    }
    return {**layout, "targets": targets}


def read_layout(work: Path, spec: Any) -> dict[str, Any]:
    path = work / "layout.json"
    if not path.is_file():
        sys.exit(
            f"{path} not found: run `python benchmarks/transfer_v2.py --prepare-only --work {work}` first "
            "(on a machine with polars), then carry the work dir"
        )
    layout = json.loads(path.read_text())
    missing = [t for t in spec.targets if t not in layout["targets"]]
    if missing:
        sys.exit(f"{path}: targets {missing} were not prepared; rerun --prepare-only with the same config")
    return absolute(layout, work)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "transfer" / "study" / "v2.toml")
    p.add_argument(
        "--set", action="append", default=[], help="override a StudySpec key, e.g. targets=['beauty']"
    )
    p.add_argument("--work", type=Path, default=None, help="work dir (default runs/transfer_v2[_cpu_small])")
    p.add_argument("--results", type=Path, default=None, help="report dir (default <work>/report)")
    p.add_argument("--pooled-config", type=Path, default=ROOT / "configs" / "data" / "pooled.toml")
    p.add_argument("--device", default="auto")
    p.add_argument("--jobs", type=int, default=1, help="cells side by side (child processes on one GPU)")
    p.add_argument("--time-budget-min", type=float, default=None, help="start no new cell after this")
    p.add_argument("--call-minutes", type=float, default=9.0, help="--plan: per-call limit to cut calls by")
    p.add_argument("--prepare-only", action="store_true")
    p.add_argument("--plan", action="store_true")
    p.add_argument("--verbose", action="store_true", help="--plan: list every cell")
    p.add_argument("--report-only", action="store_true")
    p.add_argument(
        "--cpu-small", action="store_true", help="tiny everything (configs/transfer/study/v2_cpu_small.toml)"
    )
    args = p.parse_args(argv)
    if args.cpu_small:
        import torch

        torch.set_num_threads(1)  # tiny models run fastest, and steadiest on a busy box, on one thread
        args.config = ROOT / "configs" / "transfer" / "study" / "v2_cpu_small.toml"
        args.device = "cpu"
    suffix = "_cpu_small" if args.cpu_small else ""
    args.work = args.work or ROOT / "runs" / f"transfer_v2{suffix}"
    # the report stays beside the cells unless asked for elsewhere: docs/results/transfer_v2 holds every
    # target's committed results, and a run on a subset of them must not drop a report among those
    args.results = args.results or args.work / "report"
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = load_spec(args.config, args.set)
    work = args.work.resolve()
    if args.prepare_only or (args.cpu_small and not (work / "layout.json").is_file()):
        prepare_all(spec, work, args.pooled_config)
        if args.prepare_only:
            return 0
    layout = read_layout(work, spec)
    ensure_tokens(layout, spec)
    from scalerec.train.compile_cache import claim_compile_cache
    from scalerec.transfer.study import plan, table
    from scalerec.transfer.study.cells import all_cells
    from scalerec.transfer.study.execute import Context
    from scalerec.transfer.study.runner import run_study

    if args.plan:
        costed = plan.cost(all_cells(spec), spec, layout, ROOT)
        print(plan.render(costed, spec, args.call_minutes, args.jobs, args.verbose))
        return 0
    if not args.report_only:
        t0 = time.perf_counter()
        claim_compile_cache(work)  # device calls cut this by a timeout and resume it
        ctx = Context(spec, work, layout, args.device, ROOT)

        def show(row: dict[str, Any]) -> None:
            test = (row.get("test") or {}).get("overall") or {}
            print(
                json.dumps(
                    {
                        "event": "cell",
                        "cell": row["cell"],
                        "valid_ndcg@10": row.get("valid_ndcg@10"),
                        "test_ndcg@10": test.get("ndcg@10"),
                        "wall_s": row.get("cell_wall_s"),
                    }
                ),
                flush=True,
            )

        status = run_study(ctx, args.time_budget_min, args.jobs, show)
        print(
            json.dumps(
                {
                    "event": "call_done",
                    **status,
                    "minutes": round((time.perf_counter() - t0) / 60, 2),
                    "hint": "rerun the same command" if status["left"] else "all cells finished",
                }
            ),
            flush=True,
        )
    out = table.write_report(work, args.results, spec)
    print(json.dumps({"event": "report", "path": str(out)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
