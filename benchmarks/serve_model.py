"""The real-model world of the serving benchmark: a trained text model over a large catalog.

One synthetic world (`scalerec.data.synthetic.generate`, seeded) gives both sides:
- training data: its raw Amazon-2018 dump goes through the public chain (`data synth` →
  `data prepare` → `text train` → `train --size paper-1M` for a few steps on CPU), so the model is a
  real run of the served architecture, briefly trained (not converged: latency and recall do not
  depend on its accuracy);
- the served catalog: every item of the world (`--items`, 1M for the bar), tokenized with the run's
  own tokenizer into a token table (`build_token_table(tokenizer_path=...)`) and encoded by the
  run's own text item encoder when the server starts;
- the request histories: the world's user histories (topic-coherent, about 9 items on average).

Every step is skipped when its output already exists under `--workdir`, so a second benchmark run
reuses the world. The commands are printed, so the record can name them. The catalog and histories
are built without polars (`serve_world.py`), so a GPU host can rebuild them from the seed.

A GPU host without polars cannot run `data prepare`; `--prepare-device DIR` writes what it needs:
the prepared training subset (`DIR/train_ds`, a few MB) and `DIR/world.json` (the world's seed and
sizes, from which `serve_world.py` regenerates the 1M-item catalog there).
benchmarks/device/serve_rank_call.sh is the device side; docs/results/serve/DEVICE_CALL.md says how.

    python benchmarks/serve_model.py --prepare-device gpu/serve_dev --items 1000000 --train-subset 500K
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _cli(argv: list[str], log: list[str]) -> None:
    cmd = [sys.executable, "-m", "scalerec", *argv]
    log.append(" ".join(["scalerec", *argv]))
    print(json.dumps({"setup": log[-1]}), flush=True)
    subprocess.run(cmd, check=True, stdout=sys.stderr)


def _prepared(w: Path, items: int, interactions: int, seed: int, subset: str, log: list[str]) -> Path:
    """The world's raw dump (`data synth`) and prepared dataset with `subset` (`data prepare`)."""
    raw, ds = w / "raw", w / "ds"
    if not (raw / "ratings.csv").is_file():
        _cli(["data", "synth", "--format", "amazon2018", "--interactions", str(interactions),
              "--items", str(items), "--seed", str(seed), "--out", str(raw)], log)
    if not (ds / "card.json").is_file():
        _cli(["data", "prepare", "--source", "amazon2018", "--ratings", str(raw / "ratings.csv"),
              "--meta", str(raw / "meta.json.gz"), "--subsets", subset, "--out", str(ds)], log)
    return ds


def build_world(
    workdir: Path, items: int, interactions: int, seed: int, size: str, steps: int, subset: str
) -> dict:
    """Create (or reuse) the run, the catalog token table and the request histories; returns paths.
    The model trains on the nested subset `subset` of the prepared world (its final full-ranking test
    on CPU would take longer than everything else at 1M items), the catalog is the whole world."""
    w = workdir
    log: list[str] = []
    t0 = time.perf_counter()
    tok, runs = w / "tok", w / "runs"
    ds = _prepared(w, items, interactions, seed, subset, log)
    train_ds = ds / "subsets" / subset if (ds / "subsets" / subset / "card.json").is_file() else ds
    if not (tok / "token_table.json").is_file():
        _cli(["text", "train", "--data", str(train_ds), "--out", str(tok)], log)
    run = runs / f"serve-{size}"
    if not (run / "final.json").is_file():
        _cli(["train", "--data", str(train_ds), "--tokens", str(tok), "--size", size, "--out", str(runs),
              "--name", run.name, "--device", "cpu", "--tracking-uri", "off",
              "--set", f"train.max_steps={steps}", "--set", "eval.max_users=1000"], log)
    catalog, catalog_tok, hist = w / "catalog", w / "catalog_tok", w / "histories.json"
    if not (catalog_tok / "token_table.json").is_file() or not hist.is_file():
        from serve_world import build_catalog  # beside this file (benchmarks/)

        build_catalog(w, tok, items, interactions, seed)
        log.append(f"catalog: all {items} world items tokenized with {tok / 'tokenizer.json'}")
    return {"run": run, "catalog": catalog, "catalog_tokens": catalog_tok, "histories": hist,
            "setup_s": round(time.perf_counter() - t0, 1), "setup_commands": log}


def load_histories(path: Path, max_len: int) -> list[list[str]]:
    """Request histories (item keys, oldest first), each cut to its `max_len` most recent items."""
    return [h[-max_len:] for h in json.loads(Path(path).read_text()) if h]


def request_recall(rec, histories: list[list[str]]) -> float:
    """recall@10 of the served index against exact search, on request histories encoded by the model
    (the index's own build-time figure uses random histories; this one uses the traffic's). With an
    approximate query engine (int8) the truth is exact search of the float32 model's queries, so
    the figure includes the engine's error as well as the index's."""
    from scalerec.serve.index import exact_topk, hit_rows, recall_at
    from scalerec.serve.recommender import encode_histories

    rows = [[r + 1 for r in rec.resolve(h)[0]] for h in histories]
    queries = encode_histories(rec.encoder, rows)
    reference = getattr(rec.encoder, "reference_histories", None)
    truth_queries = reference(rows) if reference is not None else None
    vectors = np.asarray(rec.encoder.encode_catalog(), dtype=np.float32)
    truth = exact_topk(queries if truth_queries is None else truth_queries, vectors, 10)[1]
    return round(recall_at(hit_rows(rec.index.search(queries, 10), 10), truth), 4)


def prepare_device(dest: Path, workdir: Path, items: int, interactions: int, seed: int, subset: str) -> dict:
    """Write `dest/train_ds` (the prepared training subset) and `dest/world.json` (seed and sizes of the
    world, the commands that made it); `dest` appears whole or not at all."""
    if dest.exists():
        raise SystemExit(f"{dest} exists; remove it or name another folder")
    log: list[str] = []
    ds = _prepared(workdir, items, interactions, seed, subset, log)
    train_ds = ds / "subsets" / subset
    if not (train_ds / "card.json").is_file():
        raise SystemExit(f"{train_ds}: no such subset ({ds} was prepared with other --subsets; "
                         "use another --workdir)")
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        raise SystemExit(f"{tmp} exists (an interrupted earlier try?); remove it first")
    shutil.copytree(train_ds, tmp / "train_ds")
    card = json.loads((train_ds / "card.json").read_text())
    world = {"items": items, "interactions": interactions, "seed": seed, "train_subset": subset,
             "train_users": card.get("n_users"), "train_items": card.get("n_items"),
             "train_interactions": card.get("n_interactions"),
             "train_ds_bytes": sum(f.stat().st_size for f in (tmp / "train_ds").iterdir()),
             "commands": log or [f"(reused the world under {workdir})"]}
    (tmp / "world.json").write_text(json.dumps(world, indent=1))
    os.replace(tmp, dest)
    return world


def main() -> None:
    ap = argparse.ArgumentParser(description="Prepare the serving world's files for a GPU host.")
    ap.add_argument("--prepare-device", required=True, metavar="DIR",
                    help="write train_ds/ and world.json here")
    ap.add_argument("--workdir", default="/tmp/scalerec-serve-device", help="raw dump and prepared world")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--interactions", type=int, default=0, help="world size (default 3 x items)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-subset", default="500K", help="nested subset the model trains on")
    args = ap.parse_args()
    world = prepare_device(Path(args.prepare_device), Path(args.workdir), args.items,
                           args.interactions or 3 * args.items, args.seed, args.train_subset)
    print(json.dumps({"prepared_for_device": str(args.prepare_device), **world}), flush=True)


if __name__ == "__main__":
    main()
