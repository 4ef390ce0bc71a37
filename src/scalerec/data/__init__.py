"""The data stage in three rooms: raw dumps (or the built-in synthetic ones) → clean dataset dirs → arrays.

- `ingest/`: readers of every raw format behind one `SOURCES` table, line parsing with per-reason
  counts, item metadata, and the synthetic raw-format generator.
- `build/`: `PrepareConfig` and `prepare(cfg) -> card` (raw files → Parquet + card + nested
  subsets, in memory or in user-hash shards), the row steps and the one subset writer.
- `read/`: a dataset dir → `UserSequences` and the leave-one-out `Split` (numpy/pyarrow only).

Imports go one way: read ← nothing, build → ingest. The public names below are importable from
`scalerec.data` directly; they are resolved lazily, so `import scalerec.data` stays cheap and a
reader of sequences never pulls in Polars.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalerec.data.build.card import read_card, render_markdown
    from scalerec.data.build.config import DomainSource, PrepareConfig
    from scalerec.data.build.prepare import prepare
    from scalerec.data.build.subsets import parse_size
    from scalerec.data.ingest.sources import SOURCES
    from scalerec.data.ingest.synthetic import World, generate, split_domains
    from scalerec.data.ingest.synthetic_formats import FORMATS, WRITERS, synthesize
    from scalerec.data.read.sequences import (
        UserSequences,
        item_popularity,
        load_sequences,
        pad_left,
    )
    from scalerec.data.read.splits import Split, leave_one_out

_EXPORTS = {
    "read_card": "scalerec.data.build.card",
    "render_markdown": "scalerec.data.build.card",
    "DomainSource": "scalerec.data.build.config",
    "PrepareConfig": "scalerec.data.build.config",
    "prepare": "scalerec.data.build.prepare",
    "parse_size": "scalerec.data.build.subsets",
    "SOURCES": "scalerec.data.ingest.sources",
    "World": "scalerec.data.ingest.synthetic",
    "generate": "scalerec.data.ingest.synthetic",
    "split_domains": "scalerec.data.ingest.synthetic",
    "FORMATS": "scalerec.data.ingest.synthetic_formats",
    "WRITERS": "scalerec.data.ingest.synthetic_formats",
    "synthesize": "scalerec.data.ingest.synthetic_formats",
    "UserSequences": "scalerec.data.read.sequences",
    "item_popularity": "scalerec.data.read.sequences",
    "load_sequences": "scalerec.data.read.sequences",
    "pad_left": "scalerec.data.read.sequences",
    "Split": "scalerec.data.read.splits",
    "leave_one_out": "scalerec.data.read.splits",
}

__all__ = [
    "DomainSource",
    "FORMATS",
    "PrepareConfig",
    "SOURCES",
    "Split",
    "UserSequences",
    "WRITERS",
    "World",
    "generate",
    "item_popularity",
    "leave_one_out",
    "load_sequences",
    "pad_left",
    "parse_size",
    "prepare",
    "read_card",
    "render_markdown",
    "split_domains",
    "synthesize",
]


def __getattr__(name: str) -> Any:
    """Resolve a public name on first use (the object itself, so signatures and docs are intact)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'scalerec.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
