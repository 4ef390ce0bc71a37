"""Item encoders: how an item id becomes a d_model vector.

`TextItemEncoder` follows the study (Zivic et al., SIGIR 2024): per-field BPE token embeddings,
pooled per field, concatenated and mapped to d_model by a linear adapter — no per-item
parameters, so the parameter count does not grow with the catalog and an unseen item is encoded
from its text alone (`encode_tokens`). `IdItemEncoder` is the SASRec baseline (one row per item).
`HybridItemEncoder` adds the two (text + ID fusion, UniSRec's transductive setting).

Deviation from the paper: masked *mean* pooling by default (sum in the `paper` preset), which keeps
item-vector scale independent of title length. Pooling uses `F.embedding_bag`, so the
[N, L, token_dim] intermediate is never materialised and padding never counts (`pool_tokens`).
"""

from __future__ import annotations

from typing import Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalerec.model.config import ModelConfig


def pool_tokens(tok: Tensor, weight: Tensor, mode: str, spread_pads: bool | None = None) -> Tensor:
    """Masked sum/mean of the token rows of each item: tok [N, L] (0 = padding) → [N, dim].

    `spread_pads` (default: on CUDA) gives every padding slot weight 0 and points it at a different
    row instead of passing `padding_idx=0`. The result and the gradient are the same, but CUDA's
    embedding-bag backward sums each row's gradient segment in one serial loop, and padding — half
    the slots of a typical title table — forms one segment of millions of entries: on an H100 that
    loop alone took ~14 ms of a 122 ms paper-1M step. Spread out, no segment is long.
    """
    if spread_pads is None:
        spread_pads = tok.is_cuda
    if not spread_pads:
        return F.embedding_bag(tok, weight, mode=mode, padding_idx=0)
    real = tok != 0
    w = real.to(weight.dtype)
    if mode == "mean":
        w = w / real.sum(dim=1, keepdim=True).clamp(min=1).to(weight.dtype)
    slots = torch.arange(tok.numel(), device=tok.device).view(tok.shape) % weight.shape[0]
    idx = torch.where(real, tok.long(), slots)
    return F.embedding_bag(idx, weight, mode="sum", per_sample_weights=w)


class ItemEncoder(Protocol):
    """What the recommender needs from an item encoder (the type of `SequentialRecommender.item_encoder`)."""

    n_items: int
    """Catalog size known to the encoder (0 before a text encoder's `set_item_table`)."""

    def encode_items(self, item_ids: Tensor, distinct: bool = False) -> Tensor:
        """[...] int64 item ids → [..., d_model] vectors (id 0 = padding). `distinct=True` promises
        the ids are already unique (no need to deduplicate them again)."""
        ...

    def set_item_table(self, tokens: dict[str, Tensor] | None) -> None:
        """Register the catalog's token table (text encoders); no-op otherwise."""
        ...

    def encode_tokens(self, tokens: dict[str, Tensor]) -> Tensor:
        """{field: [N, L] int} → [N, d_model] for items outside the table (text encoders only)."""
        ...


class TextItemEncoder(nn.Module):
    """Per-field token embeddings → masked mean/sum pooling → concat → Linear(F·token_dim, d_model)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fields = cfg.fields
        self.max_len = dict(cfg.field_max_len)
        self.mode = cfg.pooling
        self.token_emb = nn.ModuleDict(
            {f: nn.Embedding(cfg.vocab_size, cfg.token_dim, padding_idx=0) for f in self.fields}
        )
        self.adapter = nn.Linear(len(self.fields) * cfg.token_dim, cfg.d_model)
        self.n_items = 0
        self.dedupe = True

    def set_item_table(self, tokens: dict[str, Tensor] | None) -> None:
        """Register `tokens[f]`: int [n_items+1, L_f] (row 0 = padding) as non-persistent buffers.

        Rows longer than the configured max for a field are truncated; extra fields are ignored.
        """
        if tokens is None:
            raise ValueError("the text item encoder needs a token table (got None)")
        missing = [f for f in self.fields if f not in tokens]
        if missing:
            raise ValueError(f"token table lacks field(s) {missing}; model fields are {list(self.fields)}")
        sizes = {int(tokens[f].shape[0]) for f in self.fields}
        if len(sizes) != 1:
            raise ValueError(f"token table fields have different row counts: {sizes}")
        vocab = self._embedding(self.fields[0]).num_embeddings
        for f in self.fields:
            t = torch.as_tensor(tokens[f])
            if t.numel() and (int(t.max()) >= vocab or int(t.min()) < 0):
                raise ValueError(f"token table field '{f}' has ids outside [0, {vocab}); "
                                 "was it built with another tokenizer than the model's?")
        device = self.adapter.weight.device
        for f in self.fields:
            # int32 halves the table's device memory (15M items x 56 tokens: 3.4 GB instead of 6.7)
            table = torch.as_tensor(tokens[f])[:, : self.max_len[f]]
            self.register_buffer(f"table_{f}", table.to(device=device, dtype=torch.int32).contiguous(),
                                 persistent=False)
        self.n_items = sizes.pop() - 1

    def _pool(self, field: str, tok: Tensor) -> Tensor:
        # tok: [N, L] → [N, token_dim]; token 0 is excluded from the sum and the mean's count
        return pool_tokens(tok, self._embedding(field).weight, self.mode)

    def _embedding(self, field: str) -> nn.Embedding:
        return cast(nn.Embedding, self.token_emb[field])

    def encode_tokens(self, tokens: dict[str, Tensor]) -> Tensor:
        """{field: [N, L_f] int32/int64 token ids} → [N, d_model]; used for cold-start items."""
        pooled = [self._pool(f, tokens[f][:, : self.max_len[f]]) for f in self.fields]
        return self.adapter(torch.cat(pooled, dim=-1))

    def encode_items(self, item_ids: Tensor, distinct: bool = False) -> Tensor:
        """[...] item ids → [..., d_model], gathering each item's tokens from the registered table."""
        if not hasattr(self, f"table_{self.fields[0]}"):
            raise RuntimeError("call set_item_table(tokens) before encoding item ids")
        flat = item_ids.reshape(-1)
        if self.dedupe and not distinct and not flat.is_cuda and not torch.compiler.is_compiling():
            # CPU: encode each distinct item once (a batch of histories repeats popular items);
            # skipped on CUDA, where the dynamic output shape would force a host sync.
            uniq, inverse = torch.unique(flat, return_inverse=True)
            return self._encode_flat(uniq)[inverse].reshape(*item_ids.shape, -1)
        return self._encode_flat(flat).reshape(*item_ids.shape, -1)

    def _encode_flat(self, flat: Tensor) -> Tensor:
        tokens = {f: getattr(self, f"table_{f}")[flat] for f in self.fields}  # [N, L_f]
        return self.encode_tokens(tokens)


class IdItemEncoder(nn.Module):
    """SASRec baseline: one learned d_model row per item id (row 0 = padding, kept at zero)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.emb = nn.Embedding(cfg.n_items + 1, cfg.d_model, padding_idx=0)
        self.n_items = cfg.n_items

    def set_item_table(self, tokens: dict[str, Tensor] | None) -> None:
        """Id items need no token table."""

    def encode_items(self, item_ids: Tensor, distinct: bool = False) -> Tensor:
        return self.emb(item_ids)

    def encode_tokens(self, tokens: dict[str, Tensor]) -> Tensor:
        """An id encoder has no vector for an item outside its table."""
        raise ValueError("encode_tokens needs the text item encoder")


class HybridItemEncoder(TextItemEncoder):
    """Text + ID: `vector(i) = text(i) + emb[i]` for items the ID table knows, `text(i)` otherwise.

    Follows the transductive fine-tuning setting of UniSRec (Hou et al., KDD 2022), which adds a
    learned ID embedding to the text-based item vector: the text part carries what transfers and
    what a cold item has, the ID part learns what the text misses about an item seen in training
    (its co-purchase niche, a vague title). Plain addition, no gate: an unseen item's vector is then
    *exactly* the text encoder's, so cold-start, `POST /items` and zero-shot transfer behave as in a
    text run, and there is no extra hyper-parameter. A learned scalar gate would only rescale rows
    the optimizer can already scale, and a concat + linear fusion would make the cold vector depend
    on an arbitrary "unknown" row.

    Items beyond the ID table (`id_rows`, fixed when the model is built: ids 1..cfg.n_items) take
    the padding row, which stays zero: appending rows to the token table (serving new items) gives
    them text-only vectors. A different catalog must call `reset_ids` first, since its ids name
    other items. Subclasses the text encoder so the parameter names are those of the text encoder
    (`token_emb`, `adapter`) and of the id encoder (`emb`): parameter groups, weight decay, transfer
    strategies and FLOP counts apply unchanged, and a text run's weights can warm-start a hybrid.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.emb = nn.Embedding(cfg.n_items + 1, cfg.d_model, padding_idx=0)

    @property
    def id_rows(self) -> int:
        """Items with an ID row (ids 1..id_rows); any other id is encoded from its text alone."""
        return self.emb.num_embeddings - 1

    def reset_ids(self, n_items: int) -> None:
        """A zero ID table for a new catalog of `n_items`: every item starts at its text-only vector."""
        w = self.emb.weight
        self.emb = nn.Embedding(n_items + 1, w.shape[1], padding_idx=0, device=w.device, dtype=w.dtype)
        nn.init.zeros_(self.emb.weight)

    def _encode_flat(self, flat: Tensor) -> Tensor:
        known = torch.where(flat <= self.id_rows, flat, torch.zeros_like(flat))  # unseen → padding row 0
        return super()._encode_flat(flat) + self.emb(known)


ITEM_ENCODERS: dict[str, type[TextItemEncoder] | type[IdItemEncoder]] = {
    "text": TextItemEncoder,
    "id": IdItemEncoder,
    "hybrid": HybridItemEncoder,
}
