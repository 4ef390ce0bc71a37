"""Training stage: `train(cfg) -> RunSummary` writes a self-describing run dir (see INTERFACES.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalerec.train.trainer import RunSummary

__all__ = ["train", "RunSummary"]


def train(cfg: Any, resume: bool = False, overwrite: bool = False) -> RunSummary:
    """Train one model (see `scalerec.train.trainer.train`); imported lazily to keep this package light."""
    from scalerec.train.trainer import train as _train

    return _train(cfg, resume, overwrite)


def __getattr__(name: str) -> Any:
    if name == "RunSummary":
        from scalerec.train.trainer import RunSummary

        return RunSummary
    raise AttributeError(name)
