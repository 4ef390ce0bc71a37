"""Is the short-attention op slower inside torch.compile than eager (paper-1M shape, dropout)?"""
import json
import time

import torch

from scalerec.model import short_attention

short_attention.load()
b, t, h, dh = 16384, 50, 4, 64
qkv = torch.randn(b, t, 3, h, dh, device="cuda", dtype=torch.bfloat16, requires_grad=True)
grad = torch.randn(b, t, h * dh, device="cuda", dtype=torch.bfloat16)
for p in (0.0, 0.1):
    def f(x, p=p):
        return short_attention.short_causal_attention(x, p).view(b, t, h * dh)
    for name, fn in (("eager", f), ("compiled", torch.compile(f))):
        for _ in range(3):
            fn(qkv).backward(grad)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(20):
            fn(qkv).backward(grad)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) / 20 * 1e3
        print(json.dumps({"dropout": p, "mode": name, "ms": ms}), flush=True)
for name, k in short_attention.KERNELS.items():
    print(name, getattr(k, "best_config", None), getattr(k, "cache", None))
