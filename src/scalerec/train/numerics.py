"""Keep a diverged run from passing as a result (issue 22): stop on a non-finite loss, write no
NaN/Infinity into JSON.

The loop never waits for the device per step; its loss accumulates on the device and is read at
log and validation points only. A NaN or inf anywhere in that window survives the sum, so checking
the accumulator there catches every diverged step at no extra host sync — the error names the
window (`steps a..b`) instead of the exact step.

JSON files are read by other stages and by strict parsers; Python's `json` writes `NaN` and
`Infinity`, which are not JSON. `finite_record` replaces them with `null` and lists the affected
keys under `"nonfinite"`, and `dumps` refuses (`allow_nan=False`) anything that slipped through.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from scalerec.errors import UserError

if TYPE_CHECKING:  # torch stays out of JSON-only users (reports)
    import torch


def _fix(value: Any, path: str, bad: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        bad.append(path)
        return None
    if isinstance(value, dict):
        return {k: _fix(v, f"{path}.{k}" if path else str(k), bad) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_fix(v, f"{path}[{i}]", bad) for i, v in enumerate(value)]
    return value


def finite_record(obj: Any) -> Any:
    """`obj` with every non-finite float replaced by None; for a dict, the replaced keys are listed
    under "nonfinite" (so a reader sees the value was not merely missing)."""
    bad: list[str] = []
    fixed = _fix(obj, "", bad)
    if bad and isinstance(fixed, dict):
        fixed["nonfinite"] = bad
    return fixed


def dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of `obj` (non-finite floats → null + "nonfinite" list)."""
    return json.dumps(finite_record(obj), allow_nan=False, default=_default, **kwargs)


def _default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return _fix(value.item(), "", [])
    return str(value)


def likely_cause(lr: float, temperature: float, sampler_alpha: float) -> str:
    """The config value most likely to have made training diverge, as a hint for the user."""
    if not math.isfinite(lr) or lr > 0.1:
        return f"train.lr={lr} is far too large (typical: 1e-4 .. 3e-3)"
    if not math.isfinite(temperature) or temperature < 1e-2:
        return f"train.temperature={temperature} makes logits overflow (typical: 0.05 .. 1)"
    if not math.isfinite(sampler_alpha):
        return f"train.sampler_alpha={sampler_alpha} is not a finite number"
    return "check train.lr (try 3x lower), train.temperature and train.sampler_alpha"


EXPLODED = 1e4
"""Mean loss (nats per target) above which a run counts as diverged: every loss here starts near
ln(catalog size) < 25, so 1e4 is never reached by a run that is learning. Seen: lr=1e3 on the tiny
test world reaches 5e15 within 5 steps while staying finite, and its "metrics" are noise."""


def check_loss(mean_loss: float, first_step: int, last_step: int, cause: str) -> None:
    """Raise a one-line UserError when the mean loss of steps first..last is not finite or has
    exploded (the caller reads it at a log point, where the loop syncs anyway)."""
    if math.isfinite(mean_loss) and mean_loss < EXPLODED:
        return
    where = f"step {last_step}" if first_step >= last_step else f"steps {first_step}..{last_step}"
    what = "became non-finite" if not math.isfinite(mean_loss) else f"exploded to {mean_loss:.3g}"
    raise UserError(f"training diverged: the loss {what} at {where}; likely cause: {cause}")


def check_weights(model: torch.nn.Module, step: int, cause: str) -> None:
    """Refuse to score or save a model with NaN/inf weights (e.g. a last step with lr=inf)."""
    import torch

    finite = torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all()
    if not bool(finite.item()):
        raise UserError(
            f"training diverged: model weights are non-finite after step {step}; likely cause: {cause}"
        )


LOGIT_OFFSET_WARN = 32.0
"""|Mean logit over the catalog| above which a low-precision run is told its offset is drifting. Softmax
ignores a common offset, so a healthy run keeps it within a few nats of 0 (0.6-1.4 for every fp32 run
measured); the packed bf16 Beauty text model passed 32 at epochs 70-90 on its way to 76-253, where bf16's
8 significant bits round its vectors by ~0.4% of it, a sizeable share of the 2.4-nat spread between items
(BENCHMARKS.md, packing)."""


def logit_offset_warning(logit_mean: float | None, low_precision: bool, z_loss: float) -> str | None:
    """The warning a run gets (once) when its logits' common offset has drifted far under bf16 autocast
    without a z-loss to hold it: said while the run trains, since the cost shows only late (a stall of
    the training loss tens of epochs later)."""
    if logit_mean is None or not low_precision or z_loss > 0 or abs(logit_mean) < LOGIT_OFFSET_WARN:
        return None
    return (f"the logits' common offset has reached {logit_mean:.1f} (valid/logit_mean) under bf16: softmax "
            "ignores it, but bf16 rounds the vectors by ~0.4% of it, and packed bf16 text models stalled "
            "once it grew (BENCHMARKS.md, packing). Consider --set train.z_loss=1e-4 or "
            "--set train.precision=fp32")
