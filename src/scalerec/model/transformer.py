"""The causal transformer body, in reading order: attention → MLP → block → stack (after nanoGPT).

Attention runs on `F.scaled_dot_product_attention(is_causal=True)` with no explicit mask: inputs
are left-aligned and right-padded, so padded positions come *after* every real one and causal
attention alone guarantees they never influence a real position (and every query sees at least
position 0, so no row is fully masked and nothing becomes NaN). That keeps the flash kernel
eligible on GPU and all shapes static (torch.compile / CUDA graphs friendly). On CUDA at T <= 128 the
same attention runs by default as one Triton program per (sequence, head) reading the fused QKV
output in place (`scalerec.model.short_attention`, `model.attention`).

Packed rows (padding-free training) hold several sequences one after another; `positions` [B, T]
(each slot's position inside its own sequence) then restricts attention to the slot's own sequence:
the Triton kernel reads it directly, the SDPA fallback gets the equivalent block-diagonal causal
mask (`packed_causal_mask`). `positions=None` is the path above, unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalerec.model import short_attention
from scalerec.model.config import ModelConfig


def packed_causal_mask(positions: Tensor) -> Tensor:
    """[B, T] positions inside each packed sequence → [B, 1, T, T] bool, True where query i may
    attend to key j: j <= i and j >= i - positions[i] (the first slot of i's sequence). Every query
    keeps at least itself, so no row is fully masked."""
    ar = torch.arange(positions.shape[1], device=positions.device)
    first = ar - positions  # [B, T]
    keep = (ar[None, None, :] <= ar[None, :, None]) & (ar[None, None, :] >= first[:, :, None])
    return keep[:, None]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one fused QKV projection."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout
        # decided here, outside any compiled region: whether the Triton kernel may be used at all
        self.short_kernel = cfg.attention != "sdpa" and short_attention.triton_available()
        if cfg.attention == "short" and not self.short_kernel:
            raise RuntimeError("model.attention='short' needs Triton (a CUDA build of PyTorch)")
        if self.short_kernel:
            short_attention.load()

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        b, t, d = x.shape
        dropout = self.dropout if self.training else 0.0
        qkv = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads)
        if self.short_kernel and short_attention.supported(qkv):
            y = short_attention.short_causal_attention(qkv, dropout, positions=positions)
            return self.proj(y.view(b, t, d))
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # 3 × [B, H, T, d/H]
        if positions is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:
            mask = packed_causal_mask(positions)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    """Linear → GELU → Linear."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.d_ffn, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_ffn, cfg.d_model, bias=cfg.bias)
        self.approximate = "tanh" if cfg.activation == "gelu_tanh" else "none"

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(F.gelu(self.fc(x), approximate=self.approximate))


class Block(nn.Module):
    """Transformer block, pre-LN (`x + f(LN(x))`) or post-LN (`LN(x + f(x))`, SASRec/paper)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.pre = cfg.norm == "pre"
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        if self.pre:
            x = x + self.drop(self.attn(self.ln1(x), positions))
            return x + self.drop(self.mlp(self.ln2(x)))
        x = self.ln1(x + self.drop(self.attn(x, positions)))
        return self.ln2(x + self.drop(self.mlp(x)))


class Transformer(nn.Module):
    """A stack of blocks; [B, T, d] (+ packed positions [B, T]) → [B, T, d]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        for block in self.layers:
            x = block(x, positions)
        return x


def init_weights(module: nn.Module, cfg: ModelConfig) -> None:
    """N(0, init_std) weights, zero biases; residual output projections scaled by 1/sqrt(2·n_layers)."""
    for name, p in module.named_parameters():
        if p.dim() < 2:
            if name.endswith("bias"):
                nn.init.zeros_(p)
            continue
        std = cfg.init_std
        if name.endswith("attn.proj.weight") or name.endswith("mlp.proj.weight"):
            std = cfg.init_std / math.sqrt(2 * cfg.n_layers)
        nn.init.normal_(p, 0.0, std)
    for m in module.modules():
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            m.weight.data[m.padding_idx].zero_()
