"""The frozen description of a model: everything needed to build it, nothing read from a dataset.

Catalog-dependent numbers (`vocab_size` for the text encoder, `n_items` for the id encoder, both
for the hybrid) are fields the caller fills from the token table / dataset card; they default to 0
so that a run config can be parsed before the token table is read, and are checked when the model
is built (`ModelConfig.check_buildable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DEFAULT_FIELDS = {"title": 32, "brand": 8, "categories": 16}


@dataclass
class ModelConfig:
    """Sequential recommender hyper-parameters (see docs/design/model.md)."""

    item_encoder: Literal["text", "id", "hybrid"] = "text"
    """How items become vectors: pooled BPE tokens of their text ("text"), one row per item ("id"), or
    their sum ("hybrid": text vector + a learned row per training item; unseen items get text only)."""
    n_items: int = field(default=0, metadata={"range": "[0, inf)"})
    """Catalog size (ids 1..n_items, 0 = padding); needed by the id and hybrid encoders, 0 = from data."""
    vocab_size: int = field(default=0, metadata={"range": "[0, inf)"})
    """Tokenizer vocabulary size (text and hybrid encoders); 0 = fill from the token table."""
    field_max_len: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_FIELDS), metadata={"range": "[1, inf)"}
    )
    """Text fields used and the max tokens kept per field; longer token rows are truncated."""
    token_dim: int = field(default=64, metadata={"range": "[1, inf)"})
    """Width of each per-field token embedding table."""
    pooling: Literal["mean", "sum"] = "mean"
    """How a field's token vectors become one vector: masked mean (default) or sum (paper)."""
    d_model: int = field(default=64, metadata={"range": "[1, inf)"})
    """Hidden size of the transformer and of item vectors."""
    n_layers: int = field(default=2, metadata={"range": "[1, inf)"})
    """Number of transformer blocks."""
    n_heads: int = field(default=2, metadata={"range": "[1, inf)"})
    """Attention heads; must divide d_model."""
    d_ffn: int = field(default=256, metadata={"range": "[1, inf)"})
    """Inner size of the feed-forward layer (paper: equal to d_model)."""
    max_len: int = field(default=50, metadata={"range": "[1, inf)"})
    """Longest input sequence (number of learned positions)."""
    dropout: float = field(default=0.1, metadata={"range": "[0, 1)"})
    """Dropout on embeddings, attention output and FFN output (paper: 0.5)."""
    norm: Literal["pre", "post"] = "pre"
    """Pre-LN blocks + final norm (default) or post-LN blocks after an input LayerNorm (paper/SASRec)."""
    residual_bf16: bool = True
    """Under bf16 autocast, carry the residual stream in bf16 instead of fp32. The norm, dropout and
    residual-add kernels that dominate a small-d step are memory-bound, so this halves their traffic
    (paper-1M on one H100: 3.97M -> 4.20M targets/s). Accuracy was unchanged where checked (Beauty
    ID-SASRec NDCG@10 0.0505 vs 0.0503 mean of 3 fp32-residual seeds; Sports 0.0282 vs 0.0282).
    No effect without autocast (fp32 training, the `paper` preset)."""
    attention: Literal["auto", "sdpa", "short"] = "auto"
    """Attention kernel. "short": one Triton program per (sequence, head) for T <= 128 (CUDA, bf16/fp16,
    attention dropout included; see `model.short_attention`), an error where Triton is missing, SDPA
    for calls it cannot take; "sdpa": `scaled_dot_product_attention` always; "auto": "short" where
    Triton is installed, else SDPA. Same function either way (tested to agree). One H100, same run:
    paper-1M (dropout 0.1) 4.21M -> 4.91M targets/s; xl +5%."""
    activation: Literal["gelu", "gelu_tanh"] = "gelu"
    """FFN activation: exact (erf) GELU, or its tanh approximation (GPT-2/BERT). The tanh form is
    cheaper to evaluate in the memory-bound GELU kernels of a large-d step."""
    bias: bool = True
    """Biases in the linear layers and layer norms (SASRec has them; LLaMA-style models drop them,
    which saves the bias-gradient reductions of a step)."""
    init_std: float = field(default=0.02, metadata={"range": "(0, inf)"})
    """Std of the normal init of weights (residual output projections are scaled by 1/sqrt(2 n_layers))."""

    def __post_init__(self) -> None:
        positive = {"token_dim": self.token_dim, "d_model": self.d_model, "n_layers": self.n_layers,
                    "n_heads": self.n_heads, "d_ffn": self.d_ffn, "max_len": self.max_len}
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"model.{name} must be >= 1, got {value}")
        if self.n_items < 0 or self.vocab_size < 0:
            raise ValueError("model.n_items and model.vocab_size must be >= 0 (0 = fill from data)")
        if self.d_model % self.n_heads:
            raise ValueError(f"model.n_heads={self.n_heads} must divide model.d_model={self.d_model}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.has_text:
            if not self.field_max_len:
                raise ValueError("model.field_max_len must name at least one text field")
            bad = {k: v for k, v in self.field_max_len.items() if v < 1}
            if bad:
                raise ValueError(f"model.field_max_len values must be >= 1, got {bad}")
        if not self.init_std > 0:  # also refuses NaN
            raise ValueError(f"model.init_std must be > 0, got {self.init_std}")

    @property
    def fields(self) -> tuple[str, ...]:
        """Text fields in a fixed order (the order of `field_max_len`)."""
        return tuple(self.field_max_len)

    @property
    def has_text(self) -> bool:
        """Items are encoded from their text (so a token table is needed and unseen items can be scored)."""
        return self.item_encoder in ("text", "hybrid")

    @property
    def has_ids(self) -> bool:
        """Items have a learned row each (so the catalog size `n_items` is needed)."""
        return self.item_encoder in ("id", "hybrid")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def check_buildable(self) -> None:
        """Raise ValueError if the data-filled fields are still unset for the chosen encoder."""
        if self.has_text and self.vocab_size < 2:
            raise ValueError("model.vocab_size is unset (0); fill it from the token table before building")
        if self.has_ids and self.n_items < 1:
            raise ValueError("model.n_items is unset (0); fill it from the dataset before building")
