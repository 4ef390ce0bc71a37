"""BPE tokenizer over normalized item text (Hugging Face `tokenizers`, serialized as tokenizer.json).

Special tokens are fixed: `[PAD]` = 0 (padding in every token table) and `[UNK]` = 1. A piece the
vocabulary cannot represent — e.g. a new script met when a pretrained tokenizer is applied to a new
domain — encodes to `[UNK]`, never to an arbitrary id. Text is normalized with
`scalerec.text.normalize.normalize_text` in Python before encoding (HF normalizers cannot unescape
HTML); the serialized tokenizer also lowercases + NFKC-normalizes, which is idempotent on our text.
Training is deterministic for a given input order (checked by a test).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from scalerec.errors import UserError
from scalerec.text.normalize import normalize_text

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1


MAX_VOCAB = 1_000_000
"""Largest BPE vocabulary trained. The `tokenizers` trainer reserves memory by the requested size and
aborts the whole process (no Python exception) somewhere between 4M and 100M on a 4 GB limit."""


def _empty_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, length: int | None = None):
    """Train a BPE `tokenizers.Tokenizer` on `texts` (normalized here); [PAD]=0, [UNK]=1."""
    from tokenizers import trainers

    if vocab_size < 3:
        raise UserError(f"vocab_size must be >= 3 (2 special tokens + pieces), got {vocab_size}")
    if vocab_size > MAX_VOCAB:
        raise UserError(
            f"vocab_size must be at most {MAX_VOCAB:,} (vocabularies in use are <= 256K), got {vocab_size:,}"
        )
    tok = _empty_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[PAD, UNK], show_progress=False
    )
    tok.train_from_iterator((normalize_text(t) for t in texts), trainer=trainer, length=length)
    check_special_tokens(tok, "trained tokenizer")
    return tok


def check_special_tokens(tok, where: str) -> None:
    """Raise UserError unless [PAD] = 0 and [UNK] = 1 and the model maps unknowns to [UNK]."""
    if tok.token_to_id(PAD) != PAD_ID or tok.token_to_id(UNK) != UNK_ID:
        raise UserError(f"{where}: expected special tokens [PAD]=0 and [UNK]=1")


def load_tokenizer(path: str | Path):
    """Load a tokenizer.json written by `train_tokenizer` (UserError if missing or incompatible)."""
    from tokenizers import Tokenizer

    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"tokenizer file not found: {path}")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
        raise UserError(f"{path}: not a valid tokenizer.json ({exc})") from None
    check_special_tokens(tok, str(path))
    return tok


def encode_texts(tok, texts: Sequence[str | None], max_len: int, chunk: int = 65536):
    """Normalize and encode `texts` → (int32 [N, max_len] right-padded with 0, int32 [N] lengths).

    Each distinct normalized text is encoded once (brands and category paths repeat across many
    items), in bounded chunks so multi-million-item catalogs fit in memory.
    """
    import numpy as np

    index: dict[str, int] = {}
    inverse = np.fromiter(
        (index.setdefault(normalize_text(t), len(index)) for t in texts), dtype=np.int64, count=len(texts)
    )
    distinct = list(index)
    uniq = np.zeros((len(distinct), max_len), dtype=np.int32)
    for start in range(0, len(distinct), chunk):
        encs = tok.encode_batch_fast(distinct[start : start + chunk], add_special_tokens=False)
        for i, enc in enumerate(encs, start):
            ids = enc.ids[:max_len]
            uniq[i, : len(ids)] = ids
    out = uniq[inverse] if len(texts) else np.zeros((0, max_len), dtype=np.int32)
    lengths = (out != PAD_ID).sum(axis=1).astype(np.int32)
    return out, lengths
