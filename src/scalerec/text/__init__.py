"""Text stage: normalization, BPE tokenizer and the per-item token table the model gathers from."""

from __future__ import annotations

from scalerec.text.item_tokens import (
    ItemTokens,
    TextConfig,
    build_token_table,
    encode_items,
    load_item_tokens,
)
from scalerec.text.normalize import normalize_text
from scalerec.text.tokenizer import load_tokenizer, train_tokenizer

__all__ = [
    "ItemTokens",
    "TextConfig",
    "build_token_table",
    "encode_items",
    "load_item_tokens",
    "load_tokenizer",
    "normalize_text",
    "train_tokenizer",
]
