"""Causal self-attention for recommender-length sequences: one Triton program per (sequence, head).

Why it exists: at T = 50 the whole T × T score tile of a head fits in one block, yet the general
flash / cuDNN kernels are built for long sequences (query tiles, a key loop, split work in the
backward) and, around them, the QKV projection's output is permuted into [B, H, T, Dh] and the
three gradients are concatenated back. Measured on an H100 at d = 1024, batch 2048, that is ~16% of
a training step for ~1% of its FLOPs. Here each program loads Q, K, V of one head straight from the
fused projection's output ([B, T, 3, H, Dh], no copies), computes scores, softmax and output in one
pass, and its backward writes dQ, dK, dV straight into one [B, T, 3, H, Dh] gradient.

Scope: CUDA, fp16/bf16 inputs, T <= 128, head size a power of two in [16, 256], no attention
dropout. `supported` says whether a call qualifies; `CausalSelfAttention` falls back to SDPA
otherwise. The ops are registered with `torch.library.triton_op`, so `torch.compile` traces them
and keeps them in its graph. Triton is imported lazily: a CPU install never needs it.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import torch
from torch import Tensor

MAX_LEN = 128


@functools.cache
def triton_available() -> bool:
    """Whether Triton imports (the CUDA wheels of PyTorch ship it; CPU installs do not)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def supported(qkv: Tensor, dropout: float) -> bool:
    """Whether `short_causal_attention` can take this [B, T, 3, H, Dh] input.

    Only shapes, device and dtype: this runs inside compiled forwards, so whether Triton is
    installed is asked once, outside them (`triton_available`, then `load`).
    """
    dh = qkv.shape[-1]
    return (qkv.is_cuda and qkv.dtype in (torch.float16, torch.bfloat16) and dropout == 0.0
            and qkv.shape[1] <= MAX_LEN and 16 <= dh <= 256 and dh & (dh - 1) == 0)


def short_causal_attention(qkv: Tensor) -> Tensor:
    """Causal softmax attention of a fused [B, T, 3, H, Dh] QKV tensor → [B, T, H, Dh].

    Calls the op through `torch.ops`, which Dynamo traces as one graph node; `load()` must have
    run first (model construction does it), never from inside a compiled region.
    """
    scale = 1.0 / math.sqrt(qkv.shape[-1])
    out, _ = torch.ops.scalerec.short_attn_fwd(qkv, scale)
    return out


def load() -> None:
    """Build the Triton kernels and register the ops (once; later calls do nothing)."""
    _ops()


def _block_t(t: int) -> int:
    return max(16, 1 << (t - 1).bit_length())


def _tuned(kernel: Any, warps: tuple[int, ...]) -> Any:
    """Let Triton pick the warp count per (T, D) on the GPU; the CPU interpreter runs the bare kernel."""
    import triton

    if os.environ.get("TRITON_INTERPRET") == "1":
        return kernel
    return triton.autotune([triton.Config({}, num_warps=w) for w in warps], key=["T", "D"])(kernel)


@functools.cache
def _ops() -> Any:
    """Build the Triton kernels and register the custom ops once (Dynamo must not trace this)."""
    import triton
    import triton.language as tl
    from torch.library import triton_op, wrap_triton

    @functools.partial(_tuned, warps=(2, 4, 8))
    @triton.jit
    def _fwd_kernel(qkv, out, lse, T, H, s_b, s_t, s_3, s_h, o_b, o_t, o_h, scale,
                    BLOCK_T: tl.constexpr, D: tl.constexpr):
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
        s = tl.where(t[None, :] <= t[:, None], s, float("-inf"))
        m = tl.max(s, axis=1)
        p = tl.exp(s - m[:, None])
        denom = tl.sum(p, axis=1)
        o = tl.dot(p.to(v.dtype), v) / denom[:, None]
        o_ptr = out + b.to(tl.int64) * o_b + h * o_h + t[:, None] * o_t + d[None, :]
        tl.store(o_ptr, o.to(out.dtype.element_ty), mask=live)
        tl.store(lse + pid.to(tl.int64) * BLOCK_T + t, m + tl.log(denom))

    @functools.partial(_tuned, warps=(4, 8, 16))
    @triton.jit
    def _bwd_kernel(qkv, out, dout, lse, dqkv, T, H, s_b, s_t, s_3, s_h, o_b, o_t, o_h,
                    g_b, g_t, g_h, scale, BLOCK_T: tl.constexpr, D: tl.constexpr):
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
        p = tl.where(keep, tl.exp(s - row_lse[:, None]), 0.0)
        dv = tl.dot(tl.trans(p.to(do.dtype)), do)
        dp = tl.dot(do, tl.trans(v))
        ds = (p * (dp - delta[:, None]) * scale).to(q.dtype)
        dq = tl.dot(ds, k)
        dk = tl.dot(tl.trans(ds), q)
        # the gradient has the input's contiguous layout: strides s_* apply to it too
        gbase = dqkv + b.to(tl.int64) * s_b + h * s_h + rows * s_t + d[None, :]
        ty = dqkv.dtype.element_ty
        tl.store(gbase, dq.to(ty), mask=live)
        tl.store(gbase + s_3, dk.to(ty), mask=live)
        tl.store(gbase + 2 * s_3, dv.to(ty), mask=live)

    @triton_op("scalerec::short_attn_fwd", mutates_args={})
    def fwd(qkv: Tensor, scale: float) -> tuple[Tensor, Tensor]:
        qkv = qkv.contiguous()
        b, t, _, h, dh = qkv.shape
        bt = _block_t(t)
        out = qkv.new_empty((b, t, h, dh))
        lse = torch.empty((b * h, bt), device=qkv.device, dtype=torch.float32)
        wrap_triton(_fwd_kernel)[(b * h,)](
            qkv, out, lse, t, h, *qkv.stride()[:4], *out.stride()[:3], scale,
            BLOCK_T=bt, D=dh)
        return out, lse

    @triton_op("scalerec::short_attn_bwd", mutates_args={})
    def bwd(qkv: Tensor, out: Tensor, dout: Tensor, lse: Tensor, scale: float) -> Tensor:
        qkv, dout = qkv.contiguous(), dout.contiguous()
        b, t, _, h, dh = qkv.shape
        dqkv = torch.empty_like(qkv)
        wrap_triton(_bwd_kernel)[(b * h,)](
            qkv, out, dout, lse, dqkv, t, h, *qkv.stride()[:4], *out.stride()[:3],
            *dout.stride()[:3], scale, BLOCK_T=_block_t(t), D=dh)
        return dqkv

    def setup_context(ctx: Any, inputs: tuple[Tensor, float], output: tuple[Tensor, Tensor]) -> None:
        qkv, scale = inputs
        out, lse = output
        ctx.save_for_backward(qkv, out, lse)
        ctx.scale = scale

    def backward(ctx: Any, dout: Tensor, _dlse: Tensor) -> tuple[Tensor, None]:
        qkv, out, lse = ctx.saved_tensors
        return bwd(qkv, out, dout, lse, ctx.scale), None

    fwd.register_autograd(backward, setup_context=setup_context)
    return _Ops(fwd, bwd)


class _Ops:
    """The registered forward and backward ops (a plain holder for `functools.cache`)."""

    def __init__(self, fwd: Any, bwd: Any) -> None:
        self.fwd, self.bwd = fwd, bwd
