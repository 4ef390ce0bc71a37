"""Device, precision and seeding: the one place that touches `torch.backends`.

Keeping these choices here means a CPU test and an H100 run differ only in what this module
returns: bf16 autocast and TF32 matmuls on CUDA, plain fp32 on CPU (bit-for-bit resumable).
"""

from __future__ import annotations

import contextlib
import os
import random
from typing import Any

import numpy as np
import torch

from scalerec.errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' → this process's CUDA device when present (LOCAL_RANK under torchrun), else CPU."""
    if name == "cpu":
        return torch.device("cpu")
    if name in ("auto", "cuda"):
        if torch.cuda.is_available():
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(dev)
            configure_cuda()
            return dev
        if name == "cuda":
            raise UserError("--device cuda was asked for but no CUDA device is available")
        return torch.device("cpu")
    raise UserError(f"unknown device {name!r}; use auto, cpu or cuda")


def configure_cuda() -> None:
    """TF32 for fp32 matmuls and flash / memory-efficient SDPA kernels."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.enable_flash_sdp(True)
    torch.backends.cuda.enable_mem_efficient_sdp(True)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """bf16 on CUDA for 'auto'/'bf16'; None (= fp32, no autocast) otherwise."""
    if precision == "fp32":
        return None
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast context for `dtype`, or a no-op."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state a training step can touch (for `state.pt`)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def describe(device: torch.device) -> str:
    """Human-readable device name for final.json."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu ({torch.get_num_threads()} threads)"
