"""Transfer stage: fine-tune a pretrained run on a new domain with one of several strategies, and
the table that says whether pretraining paid off (see `finetune.py`, `strategies.py`, `report.py`).

Exports load on first use, so `scalerec.transfer.report` (NumPy only) does not import torch.
`finetune(cfg)` is imported from `scalerec.transfer.finetune`: a package attribute of that name
is the submodule once it is imported, so it cannot also be the function.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalerec.transfer.finetune import FinetuneConfig
    from scalerec.transfer.report import transfer_report
    from scalerec.transfer.strategies import STRATEGIES, StrategyName

_EXPORTS = {
    "FinetuneConfig": "scalerec.transfer.finetune",
    "STRATEGIES": "scalerec.transfer.strategies",
    "StrategyName": "scalerec.transfer.strategies",
    "transfer_report": "scalerec.transfer.report",
}
__all__ = ["FinetuneConfig", "STRATEGIES", "StrategyName", "transfer_report"]


def __getattr__(name: str) -> Any:
    """Import an export on first use: `import scalerec.transfer` (and its light submodules) stays cheap."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
