"""Writes the item-token files of the hand-made training worlds (tests/train/conftest.py and
test_train_fraction.py): one copy of the token-table layout `load_item_tokens` reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_token_table(tokens: Path, data: Path, vocab: int, title: np.ndarray, brand: np.ndarray) -> None:
    """`item_tokens.npz` + `token_table.json` for per-item `title` / `brand` token rows (row 0 = padding)."""
    np.savez(
        tokens / "item_tokens.npz",
        title=title,
        title_len=(title > 0).sum(1).astype(np.int32),
        brand=brand,
        brand_len=(brand > 0).sum(1).astype(np.int32),
    )
    table = {
        "format_version": 1,
        "vocab_size": vocab,
        "fields": {"title": int(title.shape[1]), "brand": int(brand.shape[1])},
        "pad_id": 0,
        "unk_id": 1,
        "dataset": str(data),
        "dataset_hash": "x",
    }
    (tokens / "token_table.json").write_text(json.dumps(table))
