"""The serving benchmark's catalog and request histories, built without polars.

The served catalog is every item of the seeded synthetic world (`scalerec.data.ingest.synthetic`)
and the request histories are that world's users. A GPU host whose image lacks polars (and whose
carried files are limited to a few tens of MB, while the 1M-item token table is 268 MB) rebuilds
both here from the seed: `plan(numpy_keys=True)` draws the same world as `generate`, titles are
rendered in plain Python (`render_titles`, the same strings as the polars renderer), items.parquet
is written with pyarrow and the token table by `build_token_table` with the run's tokenizer. The
result is identical to what the polars path wrote (tests/serve/test_serve_world.py checks it).

    python benchmarks/serve_world.py --tokens TOK_DIR --out W --items 1000000   # W/catalog, ...
    python benchmarks/serve_world.py --tokens TOK_DIR --out W --world gpu/serve_dev/world.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalerec.data.ingest.synthetic import plan
from scalerec.data.ingest.synthetic_catalog import PER_TOPIC, Catalog

HISTORIES = 20_000
"""Request histories kept (drawn without replacement from the world's users)."""


@dataclass
class ServeWorld:
    """The world's catalog (row i = item id i + 1) and its users' histories (0-based item rows)."""

    keys: np.ndarray  # unicode [n_items]
    titles: np.ndarray  # object [n_items]
    brands: np.ndarray  # object [n_items]
    categories: np.ndarray  # object [n_items, 3]
    offsets: np.ndarray  # int64 [n_users + 1]
    items: np.ndarray  # int32 [nnz], user-major, oldest first


def render_titles(cat: Catalog, lo: int, hi: int) -> np.ndarray:
    """`Catalog.titles` without polars: `Word Word Word Filler 123`, each word title-cased."""
    topic = cat.item_topic[lo:hi]
    words = np.array([w.capitalize() for w in cat.topic_words], dtype=object)
    filler = np.array([w.capitalize() for w in cat.filler], dtype=object)
    cols = [words[cat.picks[lo:hi, j] + topic * PER_TOPIC].tolist() for j in range(3)]
    cols.append(filler[cat.fill[lo:hi]].tolist())
    cols.append(cat.model_no[lo:hi].tolist())
    return np.array([f"{a} {b} {c} {d} {m}" for a, b, c, d, m in zip(*cols, strict=True)], dtype=object)


def serve_world(interactions: int, seed: int, n_items: int) -> ServeWorld:
    """The world `generate(interactions, seed, n_items)` draws, catalog and histories only."""
    p = plan(interactions, seed=seed, n_items=n_items, numpy_keys=True)
    cat, n = p.catalog, p.n_items
    return ServeWorld(p.item_key, render_titles(cat, 0, n), cat.brands(0, n), cat.categories(0, n),
                      p.offsets, p.items)


def write_items(world: ServeWorld, catalog_dir: Path) -> Path:
    """items.parquet of the whole world (ids 1..n in world order), written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    catalog_dir.mkdir(parents=True, exist_ok=True)
    n = len(world.keys)
    table = pa.table({
        "item_id": pa.array(np.arange(1, n + 1), pa.int32()),
        "item_key": pa.array(world.keys.astype(str).tolist()),
        "title": pa.array(world.titles.tolist()),
        "brand": pa.array(world.brands.tolist()),
        "categories": pa.array(world.categories.tolist(), pa.list_(pa.string())),
    })
    path = catalog_dir / "items.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def pick_histories(world: ServeWorld, seed: int, n: int = HISTORIES) -> list[list[str]]:
    """Up to `n` users' histories as item keys (oldest first), users drawn with `seed`."""
    n_users = len(world.offsets) - 1
    picked = np.random.default_rng(seed).choice(n_users, size=min(n, n_users), replace=False)
    keys, off = world.keys.astype(str), world.offsets
    return [keys[world.items[off[u] : off[u + 1]]].tolist() for u in picked]


def build_catalog(out: Path, tokens: Path, n_items: int, interactions: int, seed: int) -> dict:
    """out/catalog/items.parquet, out/catalog_tok (the run's tokenizer `tokens`/tokenizer.json) and
    out/histories.json; returns the paths and the seconds each part took."""
    from scalerec.text.item_tokens import build_token_table

    times, t = {}, time.perf_counter()
    world = serve_world(interactions, seed, n_items)
    times["world_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    catalog, catalog_tok, hist = out / "catalog", out / "catalog_tok", out / "histories.json"
    write_items(world, catalog)
    histories = pick_histories(world, seed)
    tmp = hist.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(histories))
    os.replace(tmp, hist)
    del world
    times["write_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    build_token_table(catalog, catalog_tok, tokenizer_path=tokens / "tokenizer.json",
                      max_lens=json.loads((tokens / "token_table.json").read_text())["fields"])
    times["tokenize_s"] = round(time.perf_counter() - t, 1)
    return {"catalog": str(catalog), "catalog_tokens": str(catalog_tok), "histories": str(hist),
            "items": n_items, "interactions": interactions, "seed": seed, **times}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", required=True, help="the run's token table dir (its tokenizer.json)")
    ap.add_argument("--out", required=True, help="writes catalog/, catalog_tok/, histories.json here")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--interactions", type=int, default=0, help="world size (default 3 x items)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--world", default=None,
                    help="world.json of `serve_model.py --prepare-device`: items, interactions, seed from it")
    args = ap.parse_args()
    if args.world:
        spec = json.loads(Path(args.world).read_text())
        args.items, args.interactions, args.seed = spec["items"], spec["interactions"], spec["seed"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = build_catalog(out, Path(args.tokens), args.items, args.interactions or 3 * args.items, args.seed)
    print(json.dumps({"serve_world": report}), flush=True)


if __name__ == "__main__":
    main()
