"""eval stage: exact full-catalog ranking, metrics with bootstrap CIs, baselines, run evaluation."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalerec.eval.evaluate import evaluate_run

_EXPORTS = {
    "evaluate_run": "scalerec.eval.evaluate",
}
__all__ = ["evaluate_run"]


def __getattr__(name: str) -> Any:
    """Import an export on first use: `import scalerec.eval` (and its light submodules) stays cheap."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
