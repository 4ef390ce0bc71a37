"""Analytic parameter and training-FLOP counts, so scaling fits use honest compute (docs/design/study.md).

Convention (PaLM / nanochat, and what `torch.utils.flop_counter.FlopCounterMode` reports): count the
FLOPs of matrix multiplications only (2 per multiply-add); layer norms, GELU, softmax, dropout,
embedding gathers and pooling are ignored (they are O(d) per token, not O(d²)). Backward = 2 ×
forward (gradient w.r.t. the input and w.r.t. the weight, one matmul each), so a training step
costs 3 × forward.

Forward FLOPs per training target (one position of one sequence), with d = d_model,
f = d_ffn, L = n_layers, T = seq_len, F = number of text fields, e = token_dim, K = negatives:

* item encoder, one item: `enc = 2·F·e·d` (the adapter; 0 for the id encoder; the hybrid's ID row
  is an O(d) gather + add, so it costs what the text encoder does)
* the input item at this position: `enc`
* per layer: QKV `6d²` + output projection `2d²` + FFN `4·d·f` + attention `4·T·d`
  (QKᵀ and PV, each `2·T·d` per query; causal masking is *not* discounted, as in PaLM's MFU
  and in FlopCounterMode's SDPA formula — flash kernels skip about half of that work)
* the target item's vector: `enc` (set `encode_targets=False` if the loss reuses input vectors)
* sampled softmax: logits `2·d·K` plus the positive logit `2·d`; the K negatives are encoded
  `K·enc / batch_targets` when shared by a batch of `batch_targets` targets (our default), or
  `K·enc` when drawn per target (`batch_targets=None`, the paper's per-sample negatives)
* full softmax: logits `2·d·n_items` and the whole catalog encoded once per batch,
  `n_items·enc / batch_targets`

Counts are nominal: every occurrence of an item is encoded (the CPU path of the text encoder
encodes each distinct item of a call once, doing less work than counted).

The non-embedding parameter count N satisfies 6·N·targets ≈ training FLOPs when T and K are small.
"""

from __future__ import annotations

from typing import Literal

from scalerec.model.config import ModelConfig


def param_counts(cfg: ModelConfig) -> dict[str, int]:
    """Parameter count by group without building the model (matches `SequentialRecommender.param_counts`)."""
    d, f = cfg.d_model, cfg.d_ffn
    n_fields = len(cfg.fields)
    text = cfg.has_text
    counts = {
        "token_embeddings": n_fields * cfg.vocab_size * cfg.token_dim if text else 0,
        "item_adapter": n_fields * cfg.token_dim * d + d if text else 0,
        "positions": cfg.max_len * d,
        # per block: 4d² + 2df weights; biases 3d + d + f + d and 2 × (norm weight + bias)
        "blocks": cfg.n_layers * (4 * d * d + 2 * d * f + (9 * d + f if cfg.bias else 2 * d)),
        "final_norm": 2 * d if cfg.bias else d,
        "id_embeddings": (cfg.n_items + 1) * d if cfg.has_ids else 0,
    }
    counts["total"] = sum(counts.values())
    counts["non_embedding"] = counts["total"] - counts["token_embeddings"] - counts["id_embeddings"]
    counts["non_embedding_strict"] = counts["blocks"] + counts["final_norm"]
    return counts


def item_encoder_flops(cfg: ModelConfig) -> int:
    """Forward FLOPs to encode one item (the adapter matmul; 0 for id embeddings)."""
    return 2 * len(cfg.fields) * cfg.token_dim * cfg.d_model if cfg.has_text else 0


def forward_flops_by_part(
    cfg: ModelConfig,
    n_negatives: int,
    seq_len: int,
    loss: Literal["sampled", "full"] = "sampled",
    n_items: int | None = None,
    batch_targets: int | None = None,
    encode_targets: bool = True,
) -> dict[str, float]:
    """Forward FLOPs per target by part: inputs, blocks, attention, targets, negatives, logits."""
    d = cfg.d_model
    enc = item_encoder_flops(cfg)
    parts = {
        "inputs": float(enc),
        "blocks": float(cfg.n_layers * (8 * d * d + 4 * d * cfg.d_ffn)),
        "attention": float(cfg.n_layers * 4 * seq_len * d),
        "targets": float(enc if encode_targets else 0),
    }
    if loss == "sampled":
        share = batch_targets if batch_targets else 1
        parts["negatives"] = n_negatives * enc / share
        parts["logits"] = float(2 * d * (n_negatives + 1))
    elif loss == "full":
        if not n_items:
            raise ValueError("loss='full' needs n_items")
        parts["targets"] = 0.0  # the target's logit is part of the full matmul
        parts["negatives"] = (n_items * enc / batch_targets) if batch_targets else float(n_items * enc)
        parts["logits"] = float(2 * d * n_items)
    else:
        raise ValueError(f"unknown loss {loss!r}; expected 'sampled' or 'full'")
    return parts


def flops_per_target(
    cfg: ModelConfig,
    n_negatives: int,
    seq_len: int,
    loss: Literal["sampled", "full"] = "sampled",
    n_items: int | None = None,
    batch_targets: int | None = None,
    encode_targets: bool = True,
) -> dict[str, float]:
    """Training FLOPs per target: `{"forward", "backward", "total"}` (backward = 2 × forward).

    `batch_targets` = targets per batch sharing the negatives (None = negatives drawn per target).
    """
    fwd = sum(
        forward_flops_by_part(
            cfg, n_negatives, seq_len, loss, n_items, batch_targets, encode_targets
        ).values()
    )
    return {"forward": fwd, "backward": 2 * fwd, "total": 3 * fwd}


def flops_per_batch(
    cfg: ModelConfig,
    batch_size: int,
    seq_len: int,
    n_negatives: int,
    loss: Literal["sampled", "full"] = "sampled",
    n_items: int | None = None,
    shared_negatives: bool = True,
    targets_per_sequence: int | None = None,
) -> dict[str, float]:
    """Training FLOPs of one padded batch [batch_size, seq_len] (all positions computed).

    `targets_per_sequence` = positions that are targets (default all `seq_len`; 1 for the paper's
    last-position mode, where the backbone still runs over every position).
    """
    tps = seq_len if targets_per_sequence is None else targets_per_sequence
    n_targets = batch_size * tps
    per_pos = forward_flops_by_part(
        cfg, n_negatives, seq_len, loss, n_items, n_targets if shared_negatives else None
    )
    backbone = (per_pos["inputs"] + per_pos["blocks"] + per_pos["attention"]) * batch_size * seq_len
    head = (per_pos["targets"] + per_pos["negatives"] + per_pos["logits"]) * n_targets
    fwd = backbone + head
    return {"forward": fwd, "backward": 2 * fwd, "total": 3 * fwd}


def paper_flops_per_sample(cfg: ModelConfig, n_negatives: int, seq_len: int) -> float:
    """The study's "FLOPs" for one training sample, to place their runs on our compute axis.

    Our reading of their counter (docs/design/study.md): forward multiply-accumulates of Linear layers only —
    every layer over all `seq_len` positions (`4d² + 2·d·f` MACs per position and layer) and the
    adapter over the history, the target and the negatives (`F·e·d` MACs per item); no attention
    products, no logits, no backward. Multiply by samples per epoch × epochs for a run's total;
    roughly 1/6 of `flops_per_target(...)["total"]` at equal work.
    """
    d, f = cfg.d_model, cfg.d_ffn
    per_item = len(cfg.fields) * cfg.token_dim * d if cfg.has_text else 0
    return float(seq_len * cfg.n_layers * (4 * d * d + 2 * d * f) + (seq_len + 1 + n_negatives) * per_item)


def mfu(targets_per_s: float, flops_per_target_total: float, peak_tflops: float = 989.0) -> float:
    """Model FLOPs utilisation: analytic training FLOP/s over the card's dense peak (H100 SXM bf16: 989)."""
    return targets_per_s * flops_per_target_total / (peak_tflops * 1e12)
