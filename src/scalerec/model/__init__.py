"""Model stage: item encoders (text / id / hybrid), the causal transformer, sizes and FLOPs accounting.

Exports load on first use, so `scalerec.model.config`, `.sizes` and `.flops` (plain numbers) can be
imported without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalerec.model.config import ModelConfig
    from scalerec.model.recommender import SequentialRecommender

_EXPORTS = {
    "ModelConfig": "scalerec.model.config",
    "SequentialRecommender": "scalerec.model.recommender",
}
__all__ = ["ModelConfig", "SequentialRecommender"]


def __getattr__(name: str) -> Any:
    """Import an export on first use: `import scalerec.model` (and its light submodules) stays cheap."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
