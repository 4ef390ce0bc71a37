"""Optional TensorBoard mirror of `metrics.jsonl` (`run.tensorboard = true`).

Uses `torch.utils.tensorboard`, which needs the `tensorboard` package (`pip install
scalerec[tensorboard]`); it is not a core dependency, so asking for it without the package is a
one-line error before training starts rather than a warning nobody reads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from scalerec.errors import UserError


class TensorBoardSink:
    """Scalars of every metrics record, under `<run dir>/tensorboard`, x axis = optimizer step."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError(
                "run.tensorboard = true needs the tensorboard package: pip install tensorboard"
            ) from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(key, value, global_step=step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
