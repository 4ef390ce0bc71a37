"""eval stage: exact full-catalog ranking, metrics with bootstrap CIs, baselines, run evaluation."""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate_run"]


def evaluate_run(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """See `scalerec.eval.evaluate.evaluate_run` (imported lazily to keep `import scalerec.eval` light)."""
    from scalerec.eval.evaluate import evaluate_run as _run

    return _run(*args, **kwargs)
