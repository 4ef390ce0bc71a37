"""The named size ladder and recipe presets: numbers only (after minGPT presets / torchtune builders).

`SIZES[name]` is a partial `ModelConfig` dict (architecture only). Non-embedding parameters
(study convention: includes adapter and positions) run from ~30K (`tiny`) to ~1.2B (`1b`).
`PRESETS` holds recipe-level model settings: `paper` reproduces the study's logged runs
(post-LN, FFN = hidden, sum pooling of title + brand with 40/8 tokens, dropout 0.5), so
`model_config("paper-1M", preset="paper")` is their 8 × 256 model. The paper sizes keep our
FFN width field as published (paper-1M: 1024); the preset sets d_ffn = d_model only when the size
does not pin it. Negatives (300 / 1,000 in the paper) are a training setting, listed in
`PAPER_NEGATIVES` for the train stage.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from scalerec.model.config import ModelConfig
from scalerec.model.flops import flops_per_batch, flops_per_target, mfu, paper_flops_per_sample, param_counts

__all__ = [
    "SIZES",
    "PRESETS",
    "PAPER_NEGATIVES",
    "model_config",
    "flops_per_target",
    "flops_per_batch",
    "mfu",
    "paper_flops_per_sample",
    "param_counts",
    "describe",
]


def _size(d: int, layers: int, heads: int, token_dim: int, ffn_mult: int = 4) -> dict[str, Any]:
    return {"d_model": d, "n_layers": layers, "n_heads": heads, "d_ffn": ffn_mult * d, "token_dim": token_dim}


SIZES: dict[str, dict[str, Any]] = {
    "tiny": _size(32, 2, 2, 32),
    "xs": _size(64, 2, 2, 64),
    "s": _size(128, 4, 4, 64),
    "m": _size(256, 8, 4, 128),
    "l": _size(512, 8, 8, 256),
    "l+": _size(768, 12, 12, 256),
    "xl": _size(1024, 16, 16, 256),
    "xxl": _size(1536, 24, 24, 256),
    "1b": _size(2048, 24, 16, 512),
    # the study's two configurations (token_dim = hidden reproduces their logged parameter counts)
    "paper-100K": {"d_model": 256, "n_layers": 16, "n_heads": 4, "d_ffn": 256, "token_dim": 256},
    "paper-1M": {"d_model": 256, "n_layers": 8, "n_heads": 4, "d_ffn": 1024, "token_dim": 128},
}

PAPER_NEGATIVES = {"paper-100K": 300, "paper-1M": 1000}

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": {
        "norm": "post",
        "pooling": "sum",
        "field_max_len": {"title": 40, "brand": 8},
        "dropout": 0.5,
        "max_len": 50,
    },
}


def model_config(name: str, *, preset: str | None = None, **overrides: Any) -> ModelConfig:
    """Build a `ModelConfig` from a ladder entry, an optional recipe preset, then field overrides.

    With `preset="paper"`, `d_ffn` becomes `d_model` unless the size itself is a paper size.
    """
    if name not in SIZES:
        raise ValueError(f"unknown model size {name!r}; known: {', '.join(SIZES)}")
    values: dict[str, Any] = dict(SIZES[name])
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown model preset {preset!r}; known: {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
        if preset == "paper" and not name.startswith("paper-"):
            values["d_ffn"] = values["d_model"]
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown ModelConfig field(s) {sorted(unknown)}")
    values.update(overrides)
    return ModelConfig(**values)


def describe(vocab_size: int = 30000) -> list[dict[str, Any]]:
    """One row per ladder size: parameter groups and training FLOPs per target (T=50, K=1000)."""
    rows = []
    for name in SIZES:
        cfg = model_config(name, vocab_size=vocab_size)
        rows.append(
            {
                "size": name,
                **param_counts(cfg),
                "flops_per_target": flops_per_target(cfg, 1000, 50, batch_targets=4096 * 50)["total"],
            }
        )
    return rows


def markdown_table(vocab_size: int = 30000) -> str:
    """The ladder as a Markdown table (for README / BENCHMARKS): `python -m scalerec.model.sizes`."""
    lines = [
        "| size | d | layers | heads | d_ffn | non-embedding | total | train GFLOP/target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in describe(vocab_size):
        s = SIZES[row["size"]]
        lines.append(
            f"| {row['size']} | {s['d_model']} | {s['n_layers']} | {s['n_heads']} | {s['d_ffn']} | "
            f"{row['non_embedding']:,} | {row['total']:,} | {row['flops_per_target'] / 1e9:.3g} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
