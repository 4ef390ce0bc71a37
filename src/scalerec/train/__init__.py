"""Training stage: `train(cfg) -> RunSummary` writes a self-describing run dir (see INTERFACES.md).

Exports load on first use, so `scalerec.train.config` can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalerec.train.trainer import RunSummary, train

_EXPORTS = {
    "train": "scalerec.train.trainer",
    "RunSummary": "scalerec.train.trainer",
}
__all__ = ["RunSummary", "train"]


def __getattr__(name: str) -> Any:
    """Import an export on first use: `import scalerec.train` (and its light submodules) stays cheap."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
