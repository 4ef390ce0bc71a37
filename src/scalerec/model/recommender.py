"""`SequentialRecommender`: item encoder + learned positions + causal transformer.

Input histories are left-aligned, right-padded with item id 0 ([B, T] int64); `forward` returns the
hidden state at every position ([B, T, d_model]), so training can supervise every position and
evaluation reads the state at `length - 1`. Scores are dot products between a hidden state and
item vectors from the same encoder (`encode_items`); the loss lives in `scalerec.train`.

Hidden states at padded positions are defined (finite) but meaningless; callers mask them.

Training may pass packed rows instead (padding-free: several users' windows one after another in a
row, `positions` [B, T] restarting at 0 for each): position embeddings are then looked up per slot
and attention stays inside each window, so every window gets exactly the hidden states it would get
alone in its own padded row.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from scalerec.model.config import ModelConfig
from scalerec.model.item_encoder import ITEM_ENCODERS, HybridItemEncoder, ItemEncoder
from scalerec.model.transformer import Transformer, init_weights

PARAM_GROUPS = ("token_embeddings", "item_adapter", "positions", "blocks", "final_norm", "id_embeddings")


class SequentialRecommender(nn.Module):
    """Next-item model built only from its `ModelConfig` (the catalog arrives via `set_item_table`)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.check_buildable()
        self.cfg = cfg
        self.item_encoder: ItemEncoder = ITEM_ENCODERS[cfg.item_encoder](cfg)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.transformer = Transformer(cfg)
        # pre-LN: norm after the last block; post-LN (SASRec): norm on the input embeddings
        self.norm = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        init_weights(self, cfg)

    # -- items -------------------------------------------------------------------------------
    def set_item_table(self, tokens: dict[str, Tensor] | None) -> None:
        """Register the catalog token table {field: int [n_items+1, L]} (text, hybrid); no-op for ids."""
        self.item_encoder.set_item_table(tokens)

    @property
    def n_items(self) -> int:
        """Catalog size known to the encoder (0 before `set_item_table` for text)."""
        return int(self.item_encoder.n_items)

    def encode_items(self, item_ids: Tensor, distinct: bool = False) -> Tensor:
        """[...] int64 item ids → [..., d_model] item vectors (works for any shape); `distinct`:
        the caller already deduplicated the ids."""
        return self.item_encoder.encode_items(item_ids, distinct)

    def encode_tokens(self, tokens: dict[str, Tensor]) -> Tensor:
        """{field: [N, L] int} → [N, d_model]: vectors of items not in the table (cold start)."""
        if not self.cfg.has_text:
            raise ValueError("encode_tokens needs the text or hybrid item encoder")
        return self.item_encoder.encode_tokens(tokens)

    def reset_item_ids(self, n_items: int) -> None:
        """Move a hybrid model to another catalog of `n_items`: a fresh zero ID table, so every item
        starts at its text-only vector (trained ID rows name the old catalog's items). No-op for text;
        an id model has nothing to keep for a new catalog."""
        if self.cfg.item_encoder == "id":
            raise ValueError("an id item encoder cannot move to another catalog; train it from scratch")
        if isinstance(self.item_encoder, HybridItemEncoder):
            self.item_encoder.reset_ids(n_items)
            self.cfg = dataclasses.replace(self.cfg, n_items=n_items)

    def all_item_vectors(self, chunk: int = 65536) -> Tensor:
        """[n_items+1, d_model] vectors of the whole catalog (row 0 = padding), in chunks."""
        dev = self.pos_emb.weight.device
        ids = torch.arange(self.n_items + 1, device=dev)
        return torch.cat([self.encode_items(part) for part in ids.split(chunk)])

    # -- sequences ---------------------------------------------------------------------------
    def embed(self, item_vectors: Tensor, positions: Tensor | None = None) -> Tensor:
        """[B, T, d] input item vectors → [B, T, d] block inputs (+ positions, input norm, dropout).
        `positions` [B, T] (packed rows): the position of each slot in its own sequence."""
        t = item_vectors.shape[1]
        if positions is not None:  # a packed row may be longer than max_len, its sequences not
            x = item_vectors + self.pos_emb(positions)
        elif t > self.cfg.max_len:
            raise ValueError(f"sequence length {t} exceeds model.max_len={self.cfg.max_len}")
        else:
            x = item_vectors + self.pos_emb.weight[:t]  # [T, d] broadcast over the batch
        if self.cfg.residual_bf16 and torch.is_autocast_enabled(x.device.type):
            x = x.to(torch.bfloat16)  # blocks add bf16 outputs to it, so the stream stays bf16
        if self.cfg.norm == "post":
            x = self.norm(x)
        return self.drop(x)

    def forward(
        self, inputs: Tensor, input_vectors: Tensor | None = None, positions: Tensor | None = None
    ) -> Tensor:
        """[B, T] int64 (left-aligned, 0 = padding on the right) → [B, T, d_model] hidden states.

        `input_vectors` ([B, T, d], optional) = `encode_items(inputs)` computed by the caller, e.g.
        encode the window `seq[:, :T+1]` once and pass `vecs[:, :-1]` here and use `vecs[:, 1:]` as
        the target vectors, saving one item-encoder pass per step. `positions` (int64 [B, T]):
        the rows are packed, each slot at this position of its own sequence (see the module doc).
        """
        vecs = self.encode_items(inputs) if input_vectors is None else input_vectors
        h = self.transformer(self.embed(vecs, positions), positions)
        return self.norm(h) if self.cfg.norm == "pre" else h

    def last_hidden(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Hidden state at position `lengths - 1` of each row: [B, d] (user vectors for ranking)."""
        h = self.forward(inputs)
        idx = (lengths.long().clamp(min=1) - 1).view(-1, 1, 1).expand(-1, 1, h.shape[-1])
        return h.gather(1, idx).squeeze(1)

    # -- accounting --------------------------------------------------------------------------
    def param_counts(self) -> dict[str, int]:
        """Parameters by group (the `PARAM_GROUPS` keys sum to `total`) plus two derived counts.

        `non_embedding` follows the study's convention: everything except the token and id
        embedding tables, i.e. it *includes* the adapter and the position embeddings (this is the
        N of our scaling fits). `non_embedding_strict` is the Kaplan et al. convention (blocks and
        norms only). `final_norm` holds the norm outside the blocks (final norm for pre-LN, input
        norm for post-LN).
        """
        counts = dict.fromkeys(PARAM_GROUPS, 0)
        for name, p in self.named_parameters():
            counts[_group(name)] += p.numel()
        counts["total"] = sum(counts[g] for g in PARAM_GROUPS)
        counts["non_embedding"] = counts["total"] - counts["token_embeddings"] - counts["id_embeddings"]
        counts["non_embedding_strict"] = counts["blocks"] + counts["final_norm"]
        return counts


def _group(name: str) -> str:
    if name.startswith("item_encoder.token_emb."):
        return "token_embeddings"
    if name.startswith("item_encoder.adapter."):
        return "item_adapter"
    if name.startswith("item_encoder.emb."):
        return "id_embeddings"
    if name.startswith("pos_emb."):
        return "positions"
    if name.startswith("transformer."):
        return "blocks"
    if name.startswith("norm."):
        return "final_norm"
    raise KeyError(f"parameter {name} has no group")
