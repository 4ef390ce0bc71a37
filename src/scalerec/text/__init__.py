"""Text stage: normalization, BPE tokenizer and the per-item token table the model gathers from."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalerec.text.item_tokens import (
        ItemTokens,
        TextConfig,
        build_token_table,
        encode_items,
        load_item_tokens,
    )
    from scalerec.text.normalize import normalize_text
    from scalerec.text.tokenizer import load_tokenizer, train_tokenizer

_EXPORTS = {
    "ItemTokens": "scalerec.text.item_tokens",
    "TextConfig": "scalerec.text.item_tokens",
    "build_token_table": "scalerec.text.item_tokens",
    "encode_items": "scalerec.text.item_tokens",
    "load_item_tokens": "scalerec.text.item_tokens",
    "normalize_text": "scalerec.text.normalize",
    "load_tokenizer": "scalerec.text.tokenizer",
    "train_tokenizer": "scalerec.text.tokenizer",
}
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


def __getattr__(name: str) -> Any:
    """Import an export on first use: `import scalerec.text` (and its light submodules) stays cheap."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
