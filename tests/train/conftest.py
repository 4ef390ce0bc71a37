"""A tiny learnable world for training tests: item i is followed by i+1 (mod), text = topic tokens."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from train_world_files import write_token_table

N_ITEMS, N_USERS, VOCAB = 40, 60, 30


def write_world(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Dataset dir + token table dir, hermetic (no other stage's code)."""
    rng = np.random.default_rng(seed)
    data, tokens = root / "data", root / "tokens"
    data.mkdir(parents=True, exist_ok=True)
    tokens.mkdir(parents=True, exist_ok=True)
    users, items = [], []
    for u in range(1, N_USERS + 1):
        start, n = int(rng.integers(1, N_ITEMS + 1)), int(rng.integers(4, 15))
        seq = [(start + k - 1) % N_ITEMS + 1 for k in range(n)]
        users += [u] * n
        items += seq
    table = pa.table(
        {
            "user_id": pa.array(users, pa.int32()),
            "item_id": pa.array(items, pa.int32()),
            "timestamp": pa.array(np.arange(len(items)), pa.int64()),
            "rating": pa.array([None] * len(items), pa.float32()),
        }
    )
    pq.write_table(table, data / "interactions.parquet")
    (data / "card.json").write_text(json.dumps({"format_version": 1, "n_users": N_USERS, "n_items": N_ITEMS}))
    ids = np.arange(N_ITEMS + 1)
    cols = [2 + ids % 20, 2 + (ids // 2) % 20, 22 + ids % 7, np.zeros_like(ids)]
    title = np.stack(cols, 1).astype(np.int32)
    brand = np.stack([2 + ids % 5, np.zeros_like(ids)], 1).astype(np.int32)
    title[0], brand[0] = 0, 0
    write_token_table(tokens, data, VOCAB, title, brand)
    return data, tokens


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> tuple[Path, Path]:
    return write_world(tmp_path_factory.mktemp("world"))
