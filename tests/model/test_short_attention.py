"""The short-sequence Triton attention against SDPA: values and gradients, every layout it reads.

On CPU the kernels run in Triton's interpreter (TRITON_INTERPRET=1, numpy underneath), so CI checks
the same kernel source the GPU compiles; the `gpu` test runs it compiled, inside torch.compile.

Triton fixes interpreter mode when it is first imported, so the CPU checks run in a child pytest
started with TRITON_INTERPRET=1 (`test_kernels_in_the_interpreter`); in this process they skip.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from scalerec.model import SequentialRecommender, short_attention
from scalerec.model.sizes import model_config

pytest.importorskip("triton", reason="Triton is not installed (it comes with the dev extras on Linux x86-64)")


INTERPRETER = os.environ.get("TRITON_INTERPRET") == "1"


@pytest.fixture
def interpreted():
    """The registered forward op, built by Triton's CPU interpreter (only inside the child run)."""
    if not INTERPRETER:
        pytest.skip("runs in the TRITON_INTERPRET=1 child started by test_kernels_in_the_interpreter")
    short_attention.load()
    return torch.ops.scalerec.short_attn_fwd


@pytest.mark.skipif(INTERPRETER, reason="this is the parent of the interpreter run")
def test_kernels_in_the_interpreter() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                         env=env, capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "11 passed" in run.stdout, run.stdout[-2000:]


def _reference(qkv: torch.Tensor) -> torch.Tensor:
    q, k, v = qkv.float().permute(2, 0, 3, 1, 4)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2)


def _check(qkv: torch.Tensor, atol: float) -> None:
    qkv = qkv.requires_grad_()
    out = short_attention.short_causal_attention(qkv)
    upstream = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * upstream).sum(), qkv)
    ref_in = qkv.detach().float().requires_grad_()
    ref = _reference(ref_in)
    (ref_grad,) = torch.autograd.grad((ref * upstream.float()).sum(), ref_in)
    assert out.shape == ref.shape and out.dtype == qkv.dtype
    torch.testing.assert_close(out.float(), ref, atol=atol, rtol=0)
    torch.testing.assert_close(grad.float(), ref_grad, atol=atol * 4, rtol=0)


SHAPES = [(3, 50, 2, 64), (2, 1, 1, 16), (2, 17, 4, 16), (1, 128, 1, 32)]


@pytest.mark.parametrize(("b", "t", "h", "dh"), SHAPES)
def test_matches_sdpa_values_and_gradients_fp32(interpreted, b, t, h, dh) -> None:
    torch.manual_seed(t)
    _check(torch.randn(b, t, 3, h, dh), atol=1e-5)


def test_matches_sdpa_in_half_precision(interpreted) -> None:
    torch.manual_seed(0)
    _check(torch.randn(2, 50, 3, 2, 32, dtype=torch.float16), atol=2e-3)


def test_future_positions_never_leak(interpreted) -> None:
    torch.manual_seed(1)
    qkv = torch.randn(2, 20, 3, 2, 16)
    changed = qkv.clone()
    changed[:, 12:] = torch.randn_like(changed[:, 12:]) * 5
    a, b = short_attention.short_causal_attention(qkv), short_attention.short_causal_attention(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_registered_op_passes_opcheck(interpreted) -> None:
    qkv = torch.randn(2, 9, 3, 2, 16, requires_grad=True)
    # fake-tensor tracing is covered by the compiled GPU test (the CPU interpreter cannot take meta tensors)
    for p_drop, seed in ((0.0, None), (0.25, torch.tensor([7]))):
        torch.library.opcheck(interpreted, (qkv, 1.0 / math.sqrt(16), p_drop, seed),
                              test_utils=("test_schema", "test_autograd_registration"))


def _kernel_keep_mask(seed: torch.Tensor, b: int, t: int, h: int, p_drop: float, **like) -> torch.Tensor:
    """The kernel's dropout mask [B, H, T, T], read back by attending to one-hot values: with
    v_j = e_j the output row i is row i of the dropped, rescaled probability matrix. The mask is a
    function of (seed, sequence, head, row, column) only, so it holds for any Q, K, V of that shape."""
    dh = max(16, 1 << (t - 1).bit_length())
    qkv = torch.randn(b, t, 3, h, dh, **like)
    qkv[:, :, 2] = 0
    qkv[:, :, 2, :, :t] = torch.eye(t, **like)[None, :, None, :]
    probs = short_attention.short_causal_attention(qkv, p_drop, seed)[..., :t]  # [B, T_i, H, T_j]
    return (probs != 0).permute(0, 2, 1, 3)


def _check_dropout(p_drop: float, atol: float, **like) -> None:
    b, t, h, dh = 3, 20, 2, 16
    seed = torch.tensor([1234], device=like.get("device"))
    keep = _kernel_keep_mask(seed, b, t, h, p_drop, **like)
    causal = torch.ones(t, t, dtype=torch.bool, device=keep.device).tril()
    assert not keep[..., ~causal].any()
    dropped = 1 - keep[..., causal].float().mean().item()
    assert abs(dropped - p_drop) < 0.05, dropped  # 3 × 2 × 210 draws
    qkv = torch.randn(b, t, 3, h, dh, **like).requires_grad_()
    out = short_attention.short_causal_attention(qkv, p_drop, seed)
    upstream = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * upstream).sum(), qkv)
    ref_in = qkv.detach().float().requires_grad_()
    q, k, v = ref_in.permute(2, 0, 3, 1, 4)
    scores = (q @ k.transpose(-1, -2) / math.sqrt(dh)).masked_fill(~causal, float("-inf"))
    probs = torch.where(keep, scores.softmax(-1) / (1 - p_drop), 0.0)
    ref = (probs @ v).transpose(1, 2)
    (ref_grad,) = torch.autograd.grad((ref * upstream.float()).sum(), ref_in)
    torch.testing.assert_close(out.float(), ref, atol=atol, rtol=0)
    torch.testing.assert_close(grad.float(), ref_grad, atol=atol * 4, rtol=0)


def test_dropout_matches_a_reference_with_the_kernels_mask(interpreted) -> None:
    torch.manual_seed(2)
    _check_dropout(0.3, atol=1e-5)


def test_dropout_mask_follows_the_seed(interpreted) -> None:
    torch.manual_seed(3)
    qkv = torch.randn(2, 12, 3, 2, 16)
    one = short_attention.short_causal_attention(qkv, 0.5, torch.tensor([1]))
    again = short_attention.short_causal_attention(qkv, 0.5, torch.tensor([1]))
    other = short_attention.short_causal_attention(qkv, 0.5, torch.tensor([2]))
    torch.testing.assert_close(one, again, atol=0, rtol=0)
    assert not torch.allclose(one, other)
    # without a seed, each call draws one from torch's generator: two calls differ
    drawn = [short_attention.short_causal_attention(qkv, 0.5) for _ in range(2)]
    assert not torch.allclose(*drawn)


def test_zero_dropout_is_the_plain_kernel(interpreted) -> None:
    torch.manual_seed(4)
    qkv = torch.randn(2, 9, 3, 1, 16)
    torch.testing.assert_close(short_attention.short_causal_attention(qkv, 0.0, torch.tensor([5])),
                               short_attention.short_causal_attention(qkv), atol=0, rtol=0)
    with pytest.raises(ValueError, match="dropout"):
        short_attention.short_causal_attention(qkv, 1.0)


def test_supported_only_where_the_kernel_applies() -> None:
    cpu = torch.zeros(1, 50, 3, 2, 64, dtype=torch.bfloat16)
    assert not short_attention.supported(cpu)  # CPU: SDPA
    assert short_attention._block_t(50) == 64 and short_attention._block_t(3) == 16


@pytest.mark.gpu
@pytest.mark.parametrize("dh", [64, 128])
def test_cuda_compiled_model_matches_sdpa_model(dh: int) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(0)
    qkv = torch.randn(64, 50, 3, 8, dh, device="cuda", dtype=torch.bfloat16)
    assert short_attention.supported(qkv)
    short_attention.load()
    _check(qkv, atol=2e-2)
    models = {}
    for attention in ("short", "sdpa"):
        torch.manual_seed(0)
        cfg = model_config("tiny", vocab_size=100, max_len=50, d_model=2 * dh, n_heads=2, dropout=0.0,
                           attention=attention)
        model = SequentialRecommender(cfg).cuda()
        g = torch.Generator().manual_seed(0)
        model.set_item_table({f: torch.randint(0, 100, (51, n), generator=g).cuda()
                              for f, n in cfg.field_max_len.items()})
        models[attention] = model
    x = torch.randint(1, 51, (16, 50), device="cuda")
    x[3, 20:] = 0
    outs, grads = {}, {}
    for name, model in models.items():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = torch.compile(model, fullgraph=True)(x)
        out.float().square().mean().backward()
        outs[name] = out.float()
        grads[name] = model.transformer.layers[0].attn.qkv.weight.grad
    torch.testing.assert_close(outs["short"], outs["sdpa"], atol=3e-2, rtol=0)
    torch.testing.assert_close(grads["short"], grads["sdpa"], atol=3e-3, rtol=0.05)


@pytest.mark.gpu
def test_cuda_dropout_matches_a_reference_with_the_kernels_mask() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    short_attention.load()
    torch.manual_seed(5)
    _check_dropout(0.1, atol=2e-2, device="cuda", dtype=torch.bfloat16)
