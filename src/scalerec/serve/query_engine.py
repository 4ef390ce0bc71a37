"""The transformer pass that turns a history's item vectors into a query, built for serving on CPU.

One request is one short history (real traffic: ~9 items), so the pass is small matrix products
whose cost is reading the weights: paper-1M has 6.3M transformer parameters, 25 MB in float32, read
once per forward whatever the history length. Measured on the 2-core VM (paper-1M, 1M-item world,
one history at a time, one thread; docs/results/serve/serve-split-*.log):

- `eager`: the model's own modules, float32 — ~3.1-3.4 ms.
- `jit`: the same pass traced and frozen (`torch.jit.freeze` + `optimize_for_inference`): weights
  folded into one graph with oneDNN-packed linears, no Python per module — ~1.95 ms, equal to
  eager within 1e-6 relative.
- `int8`: every `nn.Linear` quantized to int8 weights with dynamic int8 activations
  (`torch.ao.quantization.quantize_dynamic`, fbgemm), then traced and frozen — ~0.9 ms: 4x fewer
  weight bytes. Its vectors differ from float32 by ~1% (relative norm), so a server using it
  measures recall@10 against exact search of the *float32* queries (`reference`) and reports it.

`bfloat16` keeps the eager pass in bf16 (fast only on CPUs with AMX). Item vectors are never
computed here: the catalog and cold-start items always use the float32 item encoder.
"""

from __future__ import annotations

import copy
import warnings
from typing import Literal

import torch
from torch import Tensor, nn

from scalerec.model.recommender import SequentialRecommender

QueryEngine = Literal["eager", "jit", "int8"]
QUERY_ENGINES: tuple[QueryEngine, ...] = ("eager", "jit", "int8")


class QueryBody(nn.Module):
    """Positions + transformer + final norm of a `SequentialRecommender`: [B, T, d] item vectors →
    [B, T, d] hidden states. Holds the model's own modules (no copy) and runs the model's own
    `embed` and `forward` code, so it cannot drift from what training and evaluation compute."""

    embed = SequentialRecommender.embed

    def __init__(self, model: SequentialRecommender) -> None:
        super().__init__()
        self.cfg = model.cfg
        self.pos_emb, self.drop, self.transformer, self.norm = (
            model.pos_emb, model.drop, model.transformer, model.norm
        )

    def forward(self, vectors: Tensor) -> Tensor:
        return SequentialRecommender.forward(self, vectors, input_vectors=vectors)  # type: ignore[arg-type]


def build_query_body(
    model: SequentialRecommender, engine: QueryEngine, dtype: torch.dtype = torch.float32
) -> nn.Module:
    """The module that encodes histories for `engine` (see the module doc); `model` is not changed.
    `dtype` other than float32 (bfloat16) runs the eager pass on a converted copy."""
    if engine not in QUERY_ENGINES:
        raise ValueError(f"query engine must be one of {', '.join(QUERY_ENGINES)}, got {engine!r}")
    if engine != "eager" and dtype != torch.float32:
        raise ValueError(f"query engine {engine!r} runs float32 weights; use dtype float32 with it")
    body = QueryBody(model).eval()
    if engine == "eager":
        return body if dtype == torch.float32 else copy.deepcopy(body).to(dtype)
    if engine == "int8":
        with warnings.catch_warnings():  # torch.ao's eager quantization warns that it moves to torchao
            warnings.simplefilter("ignore")
            body = torch.ao.quantization.quantize_dynamic(body, {nn.Linear}, dtype=torch.qint8)
    d = int(model.cfg.d_model)
    example = torch.randn(2, min(4, int(model.cfg.max_len)), d)  # B, T > 1: neither is specialised
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the max_len check: callers pad to it
        traced = torch.jit.freeze(torch.jit.trace(body, example, check_trace=False))
        if engine == "jit":
            traced = torch.jit.optimize_for_inference(traced)
    return traced
