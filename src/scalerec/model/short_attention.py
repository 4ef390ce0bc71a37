"""Causal self-attention for recommender-length sequences: one Triton program per (sequence, head).

Why it exists: at T = 50 the whole T × T score tile of a head fits in one block, yet the general
flash / cuDNN kernels are built for long sequences (query tiles, a key loop, split work in the
backward) and, around them, the QKV projection's output is permuted into [B, H, T, Dh] and the
three gradients are concatenated back. Measured on an H100 at d = 1024, batch 2048, that is ~16% of
a training step for ~1% of its FLOPs. Here each program loads Q, K, V of one head straight from the
fused projection's output ([B, T, 3, H, Dh], no copies), computes scores, softmax and output in one
pass, and its backward writes dQ, dK, dV straight into one [B, T, 3, H, Dh] gradient.

Packed rows (several users' windows in one row, padding-free training): `positions` [B, T] gives
each slot's position inside its segment, so query t attends to keys t - positions[t] .. t — a
block-diagonal causal mask from one int per slot (segments are contiguous; a padding slot with
position 0 attends to itself only, so no row is ever fully masked). Without `positions` the kernels
are the plain causal ones: the segment test is a `PACKED` constexpr branch compiled out of them.

Scope: CUDA, fp16/bf16 inputs, T <= 128, head size a power of two in [16, 256]. Attention dropout
is supported (a Philox mask regenerated in the backward, never stored; checked on the GPU against a
reference that reads the kernel's mask back). `supported` says whether a call
qualifies; `CausalSelfAttention` falls back to SDPA otherwise. The ops are registered with
`torch.library.triton_op`, so `torch.compile` traces them and keeps them in its graph. Triton is
imported lazily: a CPU install never needs it.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Optional

import torch
from torch import Tensor

MAX_LEN = 128


@functools.cache
def triton_available() -> bool:
    """Whether Triton imports (the CUDA wheels of PyTorch ship it; CPU installs do not) and this
    torch can register Triton ops (`torch.library.triton_op`, torch >= 2.6)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return hasattr(torch.library, "triton_op")


def supported(qkv: Tensor) -> bool:
    """Whether `short_causal_attention` can take this [B, T, 3, H, Dh] input on the GPU.

    Only shapes, device and dtype: this runs inside compiled forwards, so whether Triton is
    installed is asked once, outside them (`triton_available`, then `load`).
    """
    dh = qkv.shape[-1]
    return (qkv.is_cuda and qkv.dtype in (torch.float16, torch.bfloat16)
            and qkv.shape[1] <= MAX_LEN and 16 <= dh <= 256 and dh & (dh - 1) == 0)


def short_causal_attention(qkv: Tensor, dropout: float = 0.0, seed: Tensor | None = None,
                           positions: Tensor | None = None) -> Tensor:
    """Causal softmax attention of a fused [B, T, 3, H, Dh] QKV tensor → [B, T, H, Dh].

    `positions` (int [B, T], packed rows): each slot's position in its segment; attention stays
    inside the segment (block-diagonal causal mask). None: plain causal attention over the row.

    `dropout` drops attention probabilities (kept ones scaled by 1 / (1 - dropout)), as SDPA's
    `dropout_p`; the mask is a function of `seed` (a 1-element int64 tensor on the device, drawn
    from torch's generator when not given) and the position, never stored. Calls the op through
    `torch.ops`, which Dynamo traces as one graph node; `load()` must have run first (model
    construction does it), never from inside a compiled region.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if seed is None and dropout > 0:
        seed = torch.randint(0, 2**62, (1,), device=qkv.device)
    scale = 1.0 / math.sqrt(qkv.shape[-1])
    out, _ = torch.ops.scalerec.short_attn_fwd(qkv, scale, dropout, seed, positions)
    return out


def _block_t(t: int) -> int:
    return max(16, 1 << (t - 1).bit_length())


KERNELS: dict[str, Any] = {}
"""The built kernels by name ("fwd", "bwd"), for benchmarks that ask which configuration Triton
picked (`.best_config` of an autotuned kernel)."""


def _tuned(kernel: Any, warps: tuple[int, ...]) -> Any:
    """Let Triton pick the warp count per (T, D, dropout) on the GPU; the CPU interpreter runs the
    bare kernel. (Several heads per program, in a loop Triton software-pipelines, was tried and
    measured no faster on an H100:
    `docs/results/model_forward/h100_2026-11-26_attention_heads_per_program.jsonl`.)"""
    import triton

    if os.environ.get("TRITON_INTERPRET") == "1":
        return kernel
    configs = [triton.Config({}, num_warps=w) for w in warps]
    return triton.autotune(configs, key=["T", "D", "DROPOUT", "PACKED"])(kernel)


@functools.cache
def load() -> None:
    """Build the Triton kernels and register the ops, once (Dynamo must not trace this)."""
    import triton
    import triton.language as tl
    from torch.library import triton_op, wrap_triton

    @functools.partial(_tuned, warps=(2, 4, 8))
    @triton.jit
    def _fwd_kernel(qkv, out, lse, seed_ptr, pos_ptr, T, H, s_b, s_t, s_3, s_h, o_b, o_t, o_h, scale,
                    p_drop, BLOCK_T: tl.constexpr, D: tl.constexpr, DROPOUT: tl.constexpr,
                    PACKED: tl.constexpr):
        # torch.compile passes Python floats as fp64 (eager Triton: fp32), which would turn the score
        # tile and its exp into fp64 math (paper-1M, dropout 0.1, one H100: 3x slower)
        scale, p_drop = tl.cast(scale, tl.float32), tl.cast(p_drop, tl.float32)
        pid = tl.program_id(0)
        b = pid // H
        h = pid % H
        t = tl.arange(0, BLOCK_T)
        d = tl.arange(0, D)
        live = (t < T)[:, None]
        base = qkv + b.to(tl.int64) * s_b + h * s_h + t[:, None] * s_t + d[None, :]
        q = tl.load(base, mask=live, other=0.0)
        k = tl.load(base + s_3, mask=live, other=0.0)
        v = tl.load(base + 2 * s_3, mask=live, other=0.0)
        s = tl.dot(q, tl.trans(k)) * scale
        keep = t[None, :] <= t[:, None]
        if PACKED:  # keys from the first slot of the query's segment (t - position) up to t
            first = t - tl.load(pos_ptr + b.to(tl.int64) * T + t, mask=t < T, other=0).to(tl.int32)
            keep = keep & (t[None, :] >= first[:, None])
        s = tl.where(keep, s, float("-inf"))
        m = tl.max(s, axis=1)
        p = tl.exp(s - m[:, None])
        denom = tl.sum(p, axis=1)
        if DROPOUT:  # Philox on (seed, program, row, column): the backward regenerates this mask
            cell = pid.to(tl.int64) * (BLOCK_T * BLOCK_T) + t[:, None] * BLOCK_T + t[None, :]
            kept = tl.rand(tl.load(seed_ptr), cell) >= p_drop
            p = tl.where(kept, p / (1.0 - p_drop), 0.0)
        o = tl.dot(p.to(v.dtype), v) / denom[:, None]
        o_ptr = out + b.to(tl.int64) * o_b + h * o_h + t[:, None] * o_t + d[None, :]
        tl.store(o_ptr, o.to(out.dtype.element_ty), mask=live)
        tl.store(lse + pid.to(tl.int64) * BLOCK_T + t, m + tl.log(denom))

    # The backward repeats the forward's preamble and dropout mask inline on purpose: with shared
    # @triton.jit helpers, torch.compile (2.11) could no longer tell which arguments the kernels
    # write, treated all as mutated and copied them (xl step 51.3% -> 50.2% MFU:
    # docs/results/train_throughput/h100_2026-11-26_xl_shared_jit_helpers.jsonl and
    # docs/results/model_forward/h100_2026-11-26_attention_shared_jit_helpers.jsonl).
    @functools.partial(_tuned, warps=(4, 8, 16))
    @triton.jit
    def _bwd_kernel(qkv, out, dout, lse, seed_ptr, pos_ptr, dqkv, T, H, s_b, s_t, s_3, s_h, o_b, o_t,
                    o_h, g_b, g_t, g_h, scale, p_drop, BLOCK_T: tl.constexpr, D: tl.constexpr,
                    DROPOUT: tl.constexpr, PACKED: tl.constexpr):
        scale, p_drop = tl.cast(scale, tl.float32), tl.cast(p_drop, tl.float32)  # as in the forward
        pid = tl.program_id(0)
        b = pid // H
        h = pid % H
        t = tl.arange(0, BLOCK_T)
        d = tl.arange(0, D)
        live = (t < T)[:, None]
        rows = t[:, None]
        base = qkv + b.to(tl.int64) * s_b + h * s_h + rows * s_t + d[None, :]
        q = tl.load(base, mask=live, other=0.0)
        k = tl.load(base + s_3, mask=live, other=0.0)
        v = tl.load(base + 2 * s_3, mask=live, other=0.0)
        o = tl.load(out + b.to(tl.int64) * o_b + h * o_h + rows * o_t + d[None, :], mask=live, other=0.0)
        do = tl.load(dout + b.to(tl.int64) * g_b + h * g_h + rows * g_t + d[None, :], mask=live, other=0.0)
        row_lse = tl.load(lse + pid.to(tl.int64) * BLOCK_T + t)
        delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), axis=1)
        s = tl.dot(q, tl.trans(k)) * scale
        keep = (t[None, :] <= rows) & live
        if PACKED:  # the forward's segment mask
            first = t - tl.load(pos_ptr + b.to(tl.int64) * T + t, mask=t < T, other=0).to(tl.int32)
            keep = keep & (t[None, :] >= first[:, None])
        p = tl.where(keep, tl.exp(s - row_lse[:, None]), 0.0)
        dp = tl.dot(do, tl.trans(v))
        if DROPOUT:  # the forward's mask, regenerated: out = (p ∘ mask / (1 - p_drop)) v
            cell = pid.to(tl.int64) * (BLOCK_T * BLOCK_T) + rows * BLOCK_T + t[None, :]
            kept = tl.rand(tl.load(seed_ptr), cell) >= p_drop
            dv = tl.dot(tl.trans(tl.where(kept, p / (1.0 - p_drop), 0.0).to(do.dtype)), do)
            dp = tl.where(kept, dp / (1.0 - p_drop), 0.0)
        else:
            dv = tl.dot(tl.trans(p.to(do.dtype)), do)
        # rowsum(p ∘ dp) = rowsum(out ∘ dout) = delta, with or without dropout
        ds = (p * (dp - delta[:, None]) * scale).to(q.dtype)
        dq = tl.dot(ds, k)
        dk = tl.dot(tl.trans(ds), q)
        # the gradient has the input's contiguous layout: strides s_* apply to it too
        gbase = dqkv + b.to(tl.int64) * s_b + h * s_h + rows * s_t + d[None, :]
        ty = dqkv.dtype.element_ty
        tl.store(gbase, dq.to(ty), mask=live)
        tl.store(gbase + s_3, dk.to(ty), mask=live)
        tl.store(gbase + 2 * s_3, dv.to(ty), mask=live)

    # Optional[...] rather than `X | None`: torch.library infers the ops' schemas from these
    # annotations, and Optional is the spelling it has read longest
    @triton_op("scalerec::short_attn_fwd", mutates_args={})
    def fwd(qkv: Tensor, scale: float, p_drop: float, seed: Optional[Tensor],  # noqa: UP045
            positions: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:  # noqa: UP045
        qkv = qkv.contiguous()
        b, t, _, h, dh = qkv.shape
        bt = _block_t(t)
        out = qkv.new_empty((b, t, h, dh))
        lse = torch.empty((b * h, bt), device=qkv.device, dtype=torch.float32)
        seed = lse if seed is None else seed  # no dropout: never read, any pointer stands in
        pos = lse if positions is None else positions.contiguous()  # likewise when not packed
        wrap_triton(_fwd_kernel)[(b * h,)](
            qkv, out, lse, seed, pos, t, h, *qkv.stride()[:4], *out.stride()[:3], scale, p_drop,
            BLOCK_T=bt, D=dh, DROPOUT=p_drop > 0, PACKED=positions is not None)
        return out, lse

    @triton_op("scalerec::short_attn_bwd", mutates_args={})
    def bwd(qkv: Tensor, out: Tensor, dout: Tensor, lse: Tensor, scale: float, p_drop: float,
            seed: Optional[Tensor], positions: Optional[Tensor]) -> Tensor:  # noqa: UP045
        qkv, dout = qkv.contiguous(), dout.contiguous()
        b, t, _, h, dh = qkv.shape
        dqkv = torch.empty_like(qkv)
        seed = lse if seed is None else seed
        pos = lse if positions is None else positions.contiguous()
        wrap_triton(_bwd_kernel)[(b * h,)](
            qkv, out, dout, lse, seed, pos, dqkv, t, h, *qkv.stride()[:4], *out.stride()[:3],
            *dout.stride()[:3], scale, p_drop, BLOCK_T=_block_t(t), D=dh, DROPOUT=p_drop > 0,
            PACKED=positions is not None)
        return dqkv

    def setup_context(ctx: Any, inputs: tuple[Tensor, float, float, Tensor | None, Tensor | None],
                      output: tuple[Tensor, Tensor]) -> None:
        qkv, scale, p_drop, seed, positions = inputs
        out, lse = output
        ctx.save_for_backward(qkv, out, lse, seed, positions)
        ctx.scale, ctx.p_drop = scale, p_drop

    def backward(ctx: Any, dout: Tensor, _dlse: Tensor) -> tuple[Tensor, None, None, None, None]:
        qkv, out, lse, seed, positions = ctx.saved_tensors
        return bwd(qkv, out, dout, lse, ctx.scale, ctx.p_drop, seed, positions), None, None, None, None

    fwd.register_autograd(backward, setup_context=setup_context)
    KERNELS.update(fwd=_fwd_kernel, bwd=_bwd_kernel)
