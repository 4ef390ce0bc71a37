"""The item token table: every catalog item's text as fixed-width token-id rows, built once.

Training and evaluation only gather rows of this table (`SequentialRecommender.set_item_table`),
so tokenization never runs in the training loop. Layout (docs/design/on-disk.md):
`item_tokens.npz` holds per field `f` an int32 [n_items+1, max_len_f] array (row 0 = padding,
right-padded with [PAD]=0) and `f_len` int32 [n_items+1]; `token_table.json` is the manifest;
`tokenizer.json` the BPE tokenizer. Building with a pretrained tokenizer (`tokenizer_path`) is how
a new domain is encoded for transfer: pieces outside its vocabulary become [UNK].
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.errors import UserError
from scalerec.io import atomic_dir, sha256_file
from scalerec.text.normalize import categories_text
from scalerec.text.output import check_output, output_lock
from scalerec.text.tokenizer import MAX_VOCAB, PAD_ID, UNK_ID, encode_texts, load_tokenizer, train_tokenizer

FORMAT_VERSION = 1
FIELDS = ("title", "brand", "categories")
# title 40 / brand 8 as in the study, so its preset can use the default table
DEFAULT_MAX_LENS = {"title": 40, "brand": 8, "categories": 16}


@dataclass
class TextConfig:
    """Settings of `scalerec text train` (TOML section-less keys or `--set key=value`)."""

    vocab_size: int = field(default=30000, metadata={"range": "[3, 1000000]"})
    """BPE vocabulary size including [PAD] and [UNK] (ignored with a pretrained tokenizer). At most
    2^24: the BPE trainer reserves memory per vocabulary entry up front (2e9 aborted the process)."""
    field_max_len: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_MAX_LENS), metadata={"range": "[1, inf)"}
    )
    """Fields to encode and max tokens kept per field (longer text is truncated)."""
    min_frequency: int = field(default=2, metadata={"range": "[1, inf)"})
    """A merge must occur at least this often in the corpus to enter the vocabulary."""
    empty_brand: str = ""
    """Text used for items without a brand ("" = none; the study used "unknown")."""

    def __post_init__(self) -> None:
        if not 3 <= self.vocab_size <= MAX_VOCAB:
            raise ValueError(f"vocab_size must be between 3 and {MAX_VOCAB:,}, got {self.vocab_size:,}")
        unknown = [f for f in self.field_max_len if f not in FIELDS]
        if unknown or not self.field_max_len:
            raise ValueError(f"field_max_len fields must be among {', '.join(FIELDS)}, got {unknown}")
        if any(v < 1 for v in self.field_max_len.values()):
            raise ValueError(f"field_max_len values must be >= 1, got {self.field_max_len}")
        if self.min_frequency < 1:
            raise ValueError(f"min_frequency must be >= 1, got {self.min_frequency}")


@dataclass
class ItemTokens:
    """Token ids per field: `fields[f]` int32 [N, L_f] (right-padded with 0), `lengths[f]` int32 [N]."""

    fields: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]
    vocab_size: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(next(iter(self.fields.values())).shape[0])

    def torch_tables(self) -> dict[str, Any]:
        """{field: int32 Tensor [N, L_f]} (zero-copy) for `SequentialRecommender.set_item_table`."""
        import torch

        return {f: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int32)) for f, a in self.fields.items()}


def encode_items(
    tokenizer,
    titles: Sequence[str | None],
    brands: Sequence[str | None],
    categories: Sequence[Sequence[str] | None],
    max_lens: dict[str, int] | None = None,
) -> ItemTokens:
    """Encode N items' text with `tokenizer` → `ItemTokens` with N rows (no padding row).

    Used for cold-start items at serving time and for encoding a new domain for transfer.
    """
    max_lens = dict(DEFAULT_MAX_LENS if max_lens is None else max_lens)
    if not (len(titles) == len(brands) == len(categories)):
        raise ValueError("titles, brands and categories must have the same length")
    texts: dict[str, list[Any]] = {
        "title": list(titles),
        "brand": list(brands),
        "categories": [categories_text(c) for c in categories],
    }
    fields, lengths = {}, {}
    for f, n in max_lens.items():
        if f not in texts:
            raise UserError(f"unknown text field '{f}' in max_lens (known: {', '.join(FIELDS)})")
        fields[f], lengths[f] = encode_texts(tokenizer, texts[f], n)
    return ItemTokens(fields, lengths, int(tokenizer.get_vocab_size()))


def save_item_tokens(tokens: ItemTokens, path: Path) -> None:
    arrays: dict[str, Any] = {}
    for f, a in tokens.fields.items():
        arrays[f] = a
        arrays[f"{f}_len"] = tokens.lengths[f]
    np.savez(path, **arrays)


def load_item_tokens(directory: str | Path) -> ItemTokens:
    """Read a token table dir written by `build_token_table` (checks the format version)."""
    directory = Path(directory)
    manifest_path = directory / "token_table.json"
    if not manifest_path.is_file():
        raise UserError(f"token table not found: {manifest_path} (run `scalerec text train` first)")
    meta = json.loads(manifest_path.read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{manifest_path}: format_version {meta.get('format_version')} != {FORMAT_VERSION}")
    with np.load(directory / "item_tokens.npz") as npz:
        fields = {f: npz[f] for f in meta["fields"]}
        lengths = {f: npz[f"{f}_len"] for f in meta["fields"]}
    return ItemTokens(fields, lengths, int(meta["vocab_size"]), meta)


def _read_items(dataset_dir: Path) -> dict[str, list]:
    import pyarrow.parquet as pq

    path = dataset_dir / "items.parquet"
    if not path.is_file():
        raise UserError(f"items file not found: {path}")
    table = pq.read_table(path)
    missing = [c for c in ("item_id", "title", "brand", "categories") if c not in table.column_names]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    ids = table.column("item_id").to_numpy()
    if len(ids) and not np.array_equal(ids, np.arange(1, len(ids) + 1)):
        raise UserError(f"{path}: item_id must be 1..n_items in order")
    return {c: table.column(c).to_pylist() for c in ("title", "brand", "categories")}


def _with_padding_row(tokens: ItemTokens) -> ItemTokens:
    fields = {f: np.vstack([np.zeros((1, a.shape[1]), np.int32), a]) for f, a in tokens.fields.items()}
    lengths = {f: np.concatenate([np.zeros(1, np.int32), a]) for f, a in tokens.lengths.items()}
    return ItemTokens(fields, lengths, tokens.vocab_size)


def _field_stats(tokens: ItemTokens) -> dict[str, dict[str, float]]:
    stats = {}
    for f, a in tokens.fields.items():
        n_tok = int(tokens.lengths[f].sum())
        stats[f] = {
            "mean_len": float(tokens.lengths[f][1:].mean()) if tokens.n_rows > 1 else 0.0,
            "empty_rows": int((tokens.lengths[f][1:] == 0).sum()),
            "unk_rate": float((a == UNK_ID).sum() / n_tok) if n_tok else 0.0,
            "truncated_rows": int((tokens.lengths[f][1:] == a.shape[1]).sum()),
        }
    return stats


def build_token_table(
    dataset_dir: str | Path,
    out_dir: str | Path,
    vocab_size: int = 30000,
    max_lens: dict[str, int] | None = None,
    tokenizer_path: str | Path | None = None,
    min_frequency: int = 2,
    empty_brand: str = "",
) -> dict[str, Any]:
    """Train (or reuse) a BPE tokenizer on `items.parquet` and write the token table dir atomically.

    Writes `out_dir/{tokenizer.json, item_tokens.npz, token_table.json}`; returns the manifest.
    With `tokenizer_path` the tokenizer is copied, not trained, and `vocab_size` is its own.
    `empty_brand` replaces missing/blank brands before tokenizing (the study used "unknown").
    `out_dir` must be absent, empty or a previous token table (`text.output.check_output`); an old
    table is replaced only once the new one is complete.
    """
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    max_lens = dict(DEFAULT_MAX_LENS if max_lens is None else max_lens)
    inputs = {"--data": dataset_dir, "--tokenizer": None if tokenizer_path is None else Path(tokenizer_path)}
    check_output(out_dir, inputs)
    with output_lock(out_dir):
        check_output(out_dir, inputs)  # again under the lock: another writer may have just finished
        return _build(dataset_dir, out_dir, vocab_size, max_lens, tokenizer_path, min_frequency, empty_brand)


def _build(
    dataset_dir: Path,
    out_dir: Path,
    vocab_size: int,
    max_lens: dict[str, int],
    tokenizer_path: str | Path | None,
    min_frequency: int,
    empty_brand: str,
) -> dict[str, Any]:
    """`build_token_table` once the output is known to be safe to (re)place."""
    items = _read_items(dataset_dir)
    if empty_brand:
        items["brand"] = [b if isinstance(b, str) and b.strip() else empty_brand for b in items["brand"]]
    cats = [categories_text(c) for c in items["categories"]]
    if tokenizer_path is not None:
        tok = load_tokenizer(tokenizer_path)
    else:
        corpus = items["title"] + items["brand"] + cats
        tok = train_tokenizer(corpus, vocab_size, min_frequency=min_frequency, length=len(corpus))
    encoded = encode_items(tok, items["title"], items["brand"], items["categories"], max_lens)
    table = _with_padding_row(encoded)
    with atomic_dir(out_dir) as tmp:
        tok.save(str(tmp / "tokenizer.json"))
        save_item_tokens(table, tmp / "item_tokens.npz")
        manifest = {
            "format_version": FORMAT_VERSION,
            "vocab_size": int(tok.get_vocab_size()),
            "fields": max_lens,
            "pad_id": PAD_ID,
            "unk_id": UNK_ID,
            "n_items": table.n_rows - 1,
            "dataset": str(dataset_dir),
            "dataset_hash": sha256_file(dataset_dir / "items.parquet"),
            "tokenizer_hash": sha256_file(tmp / "tokenizer.json"),
            "pretrained_tokenizer": None if tokenizer_path is None else str(tokenizer_path),
            "empty_brand": empty_brand,
            "field_stats": _field_stats(table),
        }
        (tmp / "token_table.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
