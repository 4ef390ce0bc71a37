"""Memory estimates made before allocating, so a size that cannot fit is one clear error, not an
allocator traceback (or a killed process) minutes later.

The estimates are lower bounds: they count only what is certainly allocated (weights, gradients,
Adam moments, the logits of one micro-batch, a sampled-evaluation matrix), so a refusal is never
a false alarm; a size that passes can still run out of memory on activations. They are compared
with the memory the device has free *now* (CUDA: `torch.cuda.mem_get_info`; CPU: the kernel's
MemAvailable), and the error states both numbers.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from scalerec.errors import UserError
from scalerec.model.flops import param_counts

if TYPE_CHECKING:
    import torch

    from scalerec.model.config import ModelConfig

GPU_SHARE_ENV = "SCALEREC_GPU_SHARE"
"""Processes sharing this GPU (set by `scalerec sweep --parallel N` for its workers); full ranking
sizes its tiles from this share of the free memory (`eval.ranking`)."""

GIB = 1024**3


def available_bytes(device: str | torch.device = "cpu") -> int:
    """Bytes free on `device` now (CPU: MemAvailable from /proc/meminfo, else physical pages)."""
    kind = str(device)
    if kind.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(kind))[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def require(need: int, what: str, device: str | torch.device = "cpu", free: int | None = None) -> None:
    """Raise a one-line `UserError` when `need` bytes (a lower bound) exceed what `device` has free."""
    free = available_bytes(device) if free is None else free
    if need > free:
        raise UserError(
            f"{what} needs at least {need / GIB:,.1f} GiB but {device} has {free / GIB:,.1f} GiB free; "
            "use a smaller value"
        )


def training_bytes(
    mcfg: ModelConfig,
    micro_batch: int,
    targets: str,
    loss: str,
    negatives: int,
    shared_negatives: bool,
    n_items: int,
) -> dict[str, int]:
    """Lower bound of one training step's memory by part, in bytes.

    params × 16 (fp32 weights, gradients, two Adam moments); logits of one micro-batch in fp32
    and their gradient (B·T targets, or B with `targets="last"`, × the candidates: all items for
    the full softmax, the shared negatives, or B·T × K for per-target negatives, which also gather
    one d_model vector per negative).
    """
    params = param_counts(mcfg)["total"]
    n_targets = micro_batch * (mcfg.max_len if targets == "all" else 1)
    if loss == "full":
        candidates = n_items + 1
    elif loss == "bce":
        candidates = 2
    else:
        candidates = negatives + 1
    logits = 2 * 4 * n_targets * candidates
    gathered = 0
    if loss == "sampled" and not shared_negatives:
        gathered = 4 * n_targets * negatives * mcfg.d_model
    return {"parameters and optimizer": 16 * params, "logits": logits, "per-target negatives": gathered}


def check_training(
    mcfg: ModelConfig,
    micro_batch: int,
    targets: str,
    loss: str,
    negatives: int,
    shared_negatives: bool,
    n_items: int,
    device: str | torch.device,
) -> None:
    """Refuse a training run whose lower-bound memory exceeds what `device` has free, naming the part
    that dominates (`model.d_model=1000000` → parameters; `train.negatives=1e9` → logits)."""
    parts = training_bytes(mcfg, micro_batch, targets, loss, negatives, shared_negatives, n_items)
    largest = max(parts, key=lambda k: parts[k])
    what = (f"training (d_model={mcfg.d_model}, d_ffn={mcfg.d_ffn}, n_layers={mcfg.n_layers}, "
            f"micro-batch {micro_batch}, {negatives} negatives; mostly {largest})")
    require(sum(parts.values()), what, device)


def sampled_eval_bytes(n_users: int, n_negatives: int) -> int:
    """Sampled ranking holds about five `int64[U, N]`-sized arrays at once (ids, keys, lookups,
    masks, scores): a lower bound of 5 × 8 bytes per (user, negative)."""
    return 40 * n_users * n_negatives
