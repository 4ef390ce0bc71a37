"""Transfer stage: fine-tune a pretrained run on a new domain with one of several strategies, and
the table that says whether pretraining paid off (see `finetune.py`, `strategies.py`, `report.py`).

Exports are resolved lazily so `scalerec.transfer.report` (NumPy only) does not import torch.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "FinetuneConfig": "scalerec.transfer.finetune",
    "finetune": "scalerec.transfer.finetune",
    "STRATEGIES": "scalerec.transfer.strategies",
    "StrategyName": "scalerec.transfer.strategies",
    "transfer_report": "scalerec.transfer.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'scalerec.transfer' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
