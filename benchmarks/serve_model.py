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
reuses the world. The commands are printed, so the record can name them.
"""

from __future__ import annotations

import json
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


def build_world(
    workdir: Path, items: int, interactions: int, seed: int, size: str, steps: int, subset: str
) -> dict:
    """Create (or reuse) the run, the catalog token table and the request histories; returns paths.
    The model trains on the nested subset `subset` of the prepared world (its final full-ranking test
    on CPU would take longer than everything else at 1M items), the catalog is the whole world."""
    w = workdir
    log: list[str] = []
    t0 = time.perf_counter()
    raw, ds, tok, runs = w / "raw", w / "ds", w / "tok", w / "runs"
    if not (raw / "ratings.csv").is_file():
        _cli(["data", "synth", "--format", "amazon2018", "--interactions", str(interactions),
              "--items", str(items), "--seed", str(seed), "--out", str(raw)], log)
    if not (ds / "card.json").is_file():
        _cli(["data", "prepare", "--source", "amazon2018", "--ratings", str(raw / "ratings.csv"),
              "--meta", str(raw / "meta.json.gz"), "--subsets", subset, "--out", str(ds)], log)
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
        _catalog_and_histories(catalog, catalog_tok, hist, tok, items, interactions, seed)
        log.append(f"catalog: all {items} world items tokenized with {tok / 'tokenizer.json'}")
    return {"run": run, "catalog": catalog, "catalog_tokens": catalog_tok, "histories": hist,
            "setup_s": round(time.perf_counter() - t0, 1), "setup_commands": log}


def _catalog_and_histories(
    catalog: Path, catalog_tok: Path, hist: Path, tok: Path, items: int, interactions: int, seed: int
) -> None:
    """items.parquet of the whole world (ids 1..n in world order), its token table with the run's
    tokenizer, and up to 20,000 user histories as item keys (oldest first)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from scalerec.data.ingest.synthetic import generate
    from scalerec.text.item_tokens import build_token_table

    world = generate(interactions, seed=seed, n_items=items)
    catalog.mkdir(parents=True, exist_ok=True)
    n = len(world.item_key)
    table = pa.table({
        "item_id": pa.array(np.arange(1, n + 1), pa.int32()),
        "item_key": pa.array(world.item_key.astype(str).tolist()),
        "title": pa.array(world.title.tolist()),
        "brand": pa.array(world.brand.tolist()),
        "categories": pa.array(world.categories.tolist(), pa.list_(pa.string())),
    })
    pq.write_table(table, catalog / "items.parquet")
    build_token_table(catalog, catalog_tok, tokenizer_path=tok / "tokenizer.json",
                      max_lens=json.loads((tok / "token_table.json").read_text())["fields"])
    bounds = np.flatnonzero(np.diff(world.user)) + 1
    users = np.split(world.item, bounds)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(users), size=min(20_000, len(users)), replace=False)
    keys = world.item_key.astype(str)
    hist.write_text(json.dumps([keys[users[u]].tolist() for u in picked]))


def load_histories(path: Path, max_len: int) -> list[list[str]]:
    """Request histories (item keys, oldest first), each cut to its `max_len` most recent items."""
    return [h[-max_len:] for h in json.loads(Path(path).read_text()) if h]


def request_recall(rec, histories: list[list[str]]) -> float:
    """recall@10 of the served index against exact search, on request histories encoded by the model
    (the index's own build-time figure uses random histories; this one uses the traffic's)."""
    from scalerec.serve.index import exact_topk, recall_at
    from scalerec.serve.recommender import encode_histories

    rows = [rec.resolve(h)[0] for h in histories]
    queries = encode_histories(rec.encoder, [[r + 1 for r in rs] for rs in rows])
    vectors = np.asarray(rec.encoder.encode_catalog(), dtype=np.float32)
    truth = exact_topk(queries, vectors, 10)[1]
    hits = rec.index.search(queries, 10)
    found = np.array([[r for r, _ in h] + [-1] * (10 - len(h)) for h in hits])
    return round(recall_at(found, truth), 4)
