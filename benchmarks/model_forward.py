"""Benchmark: one training step's model work (forward + sampled-softmax head + backward), and the
item encoder alone, each against a baseline measured in the same run.

* `step`: `SequentialRecommender` at a ladder size on a [batch, seq_len] batch, every position a
  target, K shared negatives. Baseline = the same model in fp32, eager, math attention (what a
  plain PyTorch port does); candidates = bf16 autocast eager, and bf16 + `torch.compile` with
  `--compile`. Reports targets/s, analytic training FLOPs (`scalerec.model.flops`) and MFU against
  `--peak-tflops` (default 989 = H100 SXM dense bf16 on CUDA).
* `item_encoder`: `encode_items` forward + backward for N random items: the naive gather →
  [N, L, e] → masked mean (baseline), `embedding_bag(padding_idx=0)`, and `pool_tokens` with the
  padding slots spread over rows (the CUDA default: no serial loop over one giant padding segment).
* `attention`: causal attention forward + backward from the fused QKV projection's output
  ([batch, seq_len, 3, heads, head_dim], bf16) to the [batch, seq_len, d] input of the output
  projection, layout copies included: SDPA per backend (cuDNN, flash, memory-efficient, PyTorch's
  own choice) and the short-sequence Triton kernel (`scalerec.model.short_attention`), eager and
  inside `torch.compile` (as the training step runs it), each against the math backend.
* `ffn`: one pre-LN MLP sub-block (LayerNorm → Linear → GELU → Linear, residual, bias-free) forward
  + backward on [batch × seq_len, d] in bf16, eager (baseline) against `torch.compile` per mode and
  GELU form (exact erf / tanh): where the step's memory-bound GELU round trip goes, and whether
  max-autotune's Triton matmul templates with the GELU fused into their epilogue beat cuBLAS +
  a separate GELU kernel.

Prints one JSON line per measurement and a ratio line per comparison.

    python benchmarks/model_forward.py --device cpu --size tiny --batch 64 --steps 5
    python benchmarks/model_forward.py --device cuda --size paper-1M --batch 4096 --negatives 1000 --compile
    python benchmarks/model_forward.py --device cuda --size xl --batch 256 --negatives 4096 --compile
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from scalerec.model import SequentialRecommender
from scalerec.model.flops import flops_per_target
from scalerec.model.item_encoder import pool_tokens
from scalerec.model.sizes import model_config

N_ITEMS = 100_000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build(args, device: torch.device) -> SequentialRecommender:
    cfg = model_config(args.size, vocab_size=30000, max_len=args.seq_len, dropout=args.dropout)
    model = SequentialRecommender(cfg).to(device)
    g = torch.Generator().manual_seed(0)
    table = {}
    for f, n in cfg.field_max_len.items():
        tok = torch.randint(2, cfg.vocab_size, (N_ITEMS + 1, n), generator=g)
        keep = torch.arange(n) < torch.randint(1, n + 1, (N_ITEMS + 1, 1), generator=g)
        table[f] = tok * keep
    model.set_item_table(table)
    return model.train()


def train_loss(model, seq, negatives, share: bool) -> torch.Tensor:
    """Sampled softmax with shared negatives over every position of windows `seq` [B, T+1].

    `share`: encode the window once and use it for both inputs and targets (saves one item-encoder
    pass); otherwise inputs and targets are encoded separately (what a plain port does).
    """
    inputs, targets = seq[:, :-1], seq[:, 1:]
    if share:
        vecs = model.encode_items(seq)  # [B, T+1, d]
        h, pos_vecs = model(inputs, input_vectors=vecs[:, :-1]), vecs[:, 1:]
    else:
        h, pos_vecs = model(inputs), model.encode_items(targets)
    h = h.flatten(0, 1)  # [B*T, d]
    pos = (h * pos_vecs.flatten(0, 1)).sum(-1, keepdim=True)  # [B*T, 1]
    logits = torch.cat([pos, h @ model.encode_items(negatives).T], dim=-1)  # [B*T, 1+K]
    return F.cross_entropy(logits.float(), torch.zeros(h.shape[0], dtype=torch.long, device=h.device))


def time_steps(fn, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def bench_step(args, device: torch.device) -> None:
    model = build(args, device)
    cfg = model.cfg
    g = torch.Generator(device="cpu").manual_seed(1)
    seq = torch.randint(1, N_ITEMS + 1, (args.batch, args.seq_len + 1), generator=g).to(device)
    negatives = torch.randint(1, N_ITEMS + 1, (args.negatives,), generator=g).to(device)
    n_targets = args.batch * args.seq_len
    bf16 = device.type == "cuda" or args.cpu_bf16
    prec = "bf16" if bf16 else "fp32"
    # (name, bf16, compiled, math attention, shared window encoding)
    variants = [
        ("fp32_eager_math", False, False, True, False),
        (f"{prec}_eager", bf16, False, False, False),
        (f"{prec}_eager_shared", bf16, False, False, True),
    ]
    if args.compile:
        variants.append((f"{prec}_compiled_shared", bf16, True, False, True))
    results = {}
    for name, use_bf16, compiled, math, share in variants:
        loss_fn = torch.compile(train_loss, mode=args.compile_mode) if compiled else train_loss
        fpt = flops_per_target(
            cfg, args.negatives, args.seq_len, batch_targets=n_targets, encode_targets=not share
        )["total"]

        def step(loss_fn=loss_fn, use_bf16=use_bf16, math=math, share=share):
            model.zero_grad(set_to_none=True)
            kernel = sdpa_kernel(SDPBackend.MATH) if math else contextlib.nullcontext()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16), kernel:
                loss = loss_fn(model, seq, negatives, share)
            loss.backward()

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sec = time_steps(step, args.steps, args.warmup + (2 if compiled else 0), device)
        tps = n_targets / sec
        row = {
            "bench": "step",
            "variant": name,
            "size": args.size,
            "device": str(device),
            "batch": args.batch,
            "seq_len": args.seq_len,
            "negatives": args.negatives,
            "step_ms": sec * 1e3,
            "targets_per_s": tps,
            "flops_per_target": fpt,
            "tflops": tps * fpt / 1e12,
            "non_embedding_params": model.param_counts()["non_embedding"],
        }
        if args.peak_tflops:
            row["mfu"] = tps * fpt / (args.peak_tflops * 1e12)
        if device.type == "cuda":
            row["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
        print(json.dumps(row), flush=True)
        results[name] = tps
    base = results[variants[0][0]]
    for name in list(results)[1:]:
        print(
            json.dumps({"bench": "step", "ratio": f"{name}/{variants[0][0]}", "value": results[name] / base})
        )


def naive_encode(model, ids: torch.Tensor) -> torch.Tensor:
    """Reference pooling: gather [N, L, e] token vectors, masked mean, concat, adapter."""
    enc = model.item_encoder
    pooled = []
    for f in enc.fields:
        tok = getattr(enc, f"table_{f}")[ids]  # [N, L]
        mask = (tok != 0).unsqueeze(-1).to(enc.token_emb[f].weight.dtype)  # [N, L, 1]
        vecs = enc.token_emb[f](tok) * mask  # [N, L, e]
        pooled.append(vecs.sum(1) / mask.sum(1).clamp(min=1))
    return enc.adapter(torch.cat(pooled, -1))


def bench_item_encoder(args, device: torch.device) -> None:
    model = build(args, device)
    enc = model.item_encoder
    ids = torch.randint(1, N_ITEMS + 1, (args.items,), device=device)

    def pooled(spread: bool):
        def encode(m, i):
            parts = [pool_tokens(getattr(enc, f"table_{f}")[i], enc.token_emb[f].weight, enc.mode, spread)
                     for f in enc.fields]
            return enc.adapter(torch.cat(parts, -1))
        return encode

    for fn in (pooled(False), pooled(True)):
        torch.testing.assert_close(naive_encode(model, ids[:64]), fn(model, ids[:64]), rtol=1e-4, atol=1e-5)
    variants = (("naive_gather_mean", naive_encode), ("embedding_bag_padding_idx", pooled(False)),
                ("embedding_bag_spread_pads", pooled(True)))
    times = {}
    for name, fn in variants:

        def run(fn=fn):
            model.zero_grad(set_to_none=True)
            fn(model, ids).sum().backward()

        times[name] = time_steps(run, args.steps, args.warmup, device)
        row = {"bench": "item_encoder", "variant": name, "items": args.items, "device": str(device),
               "ms": times[name] * 1e3, "items_per_s": args.items / times[name]}
        print(json.dumps(row), flush=True)
    for name, _ in variants[1:]:
        ratio = {"bench": "item_encoder", "ratio": f"{name}/naive_gather_mean",
                 "value": times["naive_gather_mean"] / times[name]}
        print(json.dumps(ratio))


def bench_attention(args, device: torch.device) -> None:
    from scalerec.model import short_attention

    overrides = {"n_heads": args.n_heads} if args.n_heads else {}
    cfg = model_config(args.size, vocab_size=30000, max_len=args.seq_len, **overrides)
    b, t, h, dh = args.batch, args.seq_len, cfg.n_heads, cfg.head_dim
    # the model's own layout: the fused projection's [B, T, 3, H, Dh] in, [B, T, d] out
    g = torch.Generator(device="cpu").manual_seed(0)
    qkv = torch.randn((b, t, 3, h, dh), generator=g).to(device, torch.bfloat16).requires_grad_()
    grad = torch.randn((b, t, h * dh), generator=g).to(device, torch.bfloat16)
    backends = {"math": [SDPBackend.MATH], "cudnn": [SDPBackend.CUDNN_ATTENTION],
                "flash": [SDPBackend.FLASH_ATTENTION], "efficient": [SDPBackend.EFFICIENT_ATTENTION],
                "default": None}
    runs = {}
    for name, chosen in backends.items():
        def sdpa(chosen=chosen):
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            with sdpa_kernel(chosen) if chosen else contextlib.nullcontext():
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=args.dropout)
            out.transpose(1, 2).reshape(b, t, h * dh).backward(grad)
        runs[name] = sdpa
    if short_attention.triton_available() and short_attention.supported(qkv):
        short_attention.load()

        def attend(x: torch.Tensor) -> torch.Tensor:
            return short_attention.short_causal_attention(x, args.dropout).view(b, t, h * dh)
        compiled = torch.compile(attend)  # as in a compiled model: scalars reach Triton as fp64 there
        runs["short_triton"] = lambda: attend(qkv).backward(grad)
        runs["short_triton_compiled"] = lambda: compiled(qkv).backward(grad)
    else:
        print(json.dumps({"bench": "attention", "variant": "short_triton",
                          "error": "not applicable (needs CUDA, Triton, bf16/fp16, T <= 128)"}))
    times = {}
    for name, run in runs.items():
        try:
            times[name] = time_steps(run, args.steps, args.warmup, device)
        except RuntimeError as err:  # backend not available for this shape/device
            print(json.dumps({"bench": "attention", "variant": name, "error": str(err)[:200]}))
            continue
        row = {"bench": "attention", "variant": name, "shape": [b, t, 3, h, dh], "dropout": args.dropout,
               "ms": times[name] * 1e3}
        print(json.dumps(row), flush=True)
    for name in times:
        if name != "math":
            ratio = {"bench": "attention", "ratio": f"{name}/math", "value": times["math"] / times[name]}
            print(json.dumps(ratio))
    for name, kernel in short_attention.KERNELS.items():
        best = getattr(kernel, "best_config", None)
        if best is not None:
            print(json.dumps({"bench": "attention", "kernel": name, "best_config": str(best)}))
    for name in ("short_triton", "short_triton_compiled"):
        if name in times and "default" in times:
            print(json.dumps({"bench": "attention", "ratio": f"{name}/default",
                              "value": times["default"] / times[name]}))


def bench_ffn(args, device: torch.device) -> None:
    cfg = model_config(args.size, vocab_size=30000, max_len=args.seq_len)
    n, d, f = args.batch * args.seq_len, cfg.d_model, cfg.d_ffn
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn((n, d), generator=g).to(device).requires_grad_()
    grad = torch.randn((n, d), generator=g).to(device)
    ln = torch.nn.LayerNorm(d, bias=False).to(device)
    fc = torch.nn.Linear(d, f, bias=False).to(device)
    proj = torch.nn.Linear(f, d, bias=False).to(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32

    def block(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            return x + proj(F.gelu(fc(ln(x)), approximate=approximate))

    def matmuls(x: torch.Tensor) -> torch.Tensor:  # the floor: cuBLAS work alone
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            return x + proj(fc(x))

    flops = 3 * 2 * 2 * n * d * f  # two matmuls, forward + backward
    variants = [("eager/erf", block, None, "none"), ("matmuls-only", matmuls, None, None)]
    variants += [(f"{m}/{'erf' if a == 'none' else 'tanh'}", block, m, a)
                 for m in args.ffn_modes for a in ("none", "tanh")]
    times = {}
    for label, fn, mode, approximate in variants:
        torch._dynamo.reset()
        fn = fn if mode is None else torch.compile(fn, mode=mode)
        kwargs = {} if approximate is None else {"approximate": approximate}

        def run(fn=fn, kwargs=kwargs) -> None:
            fn(x, **kwargs).backward(grad)
        t0 = time.perf_counter()
        run()
        _sync(device)
        compile_s = time.perf_counter() - t0
        times[label] = time_steps(run, args.steps, args.warmup, device)
        print(json.dumps({"bench": "ffn", "variant": label, "shape": [n, d, f], "ms": times[label] * 1e3,
                          "matmul_tflops": flops / times[label] / 1e12, "first_call_s": compile_s}),
              flush=True)
    for label, sec in times.items():
        if label != "eager/erf":
            print(json.dumps({"bench": "ffn", "ratio": f"{label}/eager", "value": times["eager/erf"] / sec}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", default="tiny")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=50)
    p.add_argument("--negatives", type=int, default=1000)
    p.add_argument("--items", type=int, default=20000, help="items encoded in the item_encoder bench")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. max-autotune")
    p.add_argument("--cpu-bf16", action="store_true", help="use bf16 autocast on CPU too")
    p.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak (default 989 on cuda)")
    p.add_argument("--n-heads", type=int, default=0, help="attention bench: heads (0 = the size's)")
    p.add_argument("--ffn-modes", nargs="+", default=["default", "max-autotune-no-cudagraphs"],
                   help="ffn bench: torch.compile modes to compare with eager")
    p.add_argument("--only", choices=["step", "item_encoder", "attention", "ffn"], default=None)
    args = p.parse_args()
    device = torch.device(args.device)
    if args.peak_tflops is None and device.type == "cuda":
        args.peak_tflops = 989.0
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    if args.only in (None, "step"):
        bench_step(args, device)
    if args.only in (None, "item_encoder"):
        bench_item_encoder(args, device)
    if args.only == "attention":
        bench_attention(args, device)
    if args.only == "ffn":
        bench_ffn(args, device)


if __name__ == "__main__":
    main()
