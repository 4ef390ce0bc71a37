"""A tiny dataset + token table + trained run for the run-dir and ranking reliability tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N_ITEMS, N_USERS, VOCAB = 40, 60, 30


def write_world(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Dataset dir (with card.json) and token table dir; item i is followed by i+1."""
    rng = np.random.default_rng(seed)
    data, tokens = root / "data", root / "tokens"
    data.mkdir(parents=True, exist_ok=True)
    tokens.mkdir(parents=True, exist_ok=True)
    users, items = [], []
    for u in range(1, N_USERS + 1):
        start, n = int(rng.integers(1, N_ITEMS + 1)), int(rng.integers(4, 15))
        users += [u] * n
        items += [(start + k - 1) % N_ITEMS + 1 for k in range(n)]
    pq.write_table(pa.table({
        "user_id": pa.array(users, pa.int32()), "item_id": pa.array(items, pa.int32()),
        "timestamp": pa.array(np.arange(len(items)), pa.int64()),
        "rating": pa.array([None] * len(items), pa.float32()),
    }), data / "interactions.parquet")
    (data / "card.json").write_text(json.dumps({"format_version": 1, "n_users": N_USERS, "n_items": N_ITEMS}))
    ids = np.arange(N_ITEMS + 1)
    cols = [2 + ids % 20, 2 + (ids // 2) % 20, 22 + ids % 7, np.zeros_like(ids)]
    title = np.stack(cols, 1).astype(np.int32)
    brand = np.stack([2 + ids % 5, np.zeros_like(ids)], 1).astype(np.int32)
    title[0], brand[0] = 0, 0
    np.savez(tokens / "item_tokens.npz", title=title, title_len=(title > 0).sum(1).astype(np.int32),
             brand=brand, brand_len=(brand > 0).sum(1).astype(np.int32))
    (tokens / "token_table.json").write_text(json.dumps({
        "format_version": 1, "vocab_size": VOCAB, "fields": {"title": 4, "brand": 2}, "pad_id": 0,
        "unk_id": 1, "dataset": str(data), "dataset_hash": "x",
    }))
    return data, tokens


def train_tiny(root: Path, name: str, *extra: str) -> Path:
    """Train a 6-step text model on the world under `root`; returns its run dir."""
    import torch

    from scalerec.train import train
    from scalerec.train.config import resolve_run_config

    data, tokens = root / "data", root / "tokens"
    overrides = [
        f"data.dataset={data}", f"data.tokens={tokens}", "data.max_len=8", f"run.out={root / 'runs'}",
        f"run.name={name}", "run.tracking_uri=off", "run.progress=false", "train.max_steps=6",
        "train.batch_size=16", "train.negatives=16", "train.log_every=3", "eval.every_steps=3",
        "train.lr=3e-3", *extra,
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(resolve_run_config(overrides=overrides, size="tiny")).run_dir
    finally:
        torch.set_num_threads(threads)
