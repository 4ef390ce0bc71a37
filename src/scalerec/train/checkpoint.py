"""Resumable training state: `state.pt` (optimizer, scheduler, RNG, data position) beside the run dir.

The model weights other stages load (`model.safetensors` + `meta.json`) are written and read by
the neutral `scalerec.rundir` module; this module adds only what a bit-for-bit resume needs
beyond them. Every file is written under a temporary name and moved into place, so a killed run
never leaves a half-written file. Loading checks what the resumed run will reuse (the weights and
token table must still hash to what `meta.json` recorded) and turns a damaged `state.pt` into a
one-line `UserError`.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from scalerec.errors import UserError
from scalerec.io import atomic_write
from scalerec.rundir import model_meta, save_weights, verify_run_files

__all__ = [
    "load_rank_rng", "load_state", "model_meta", "save_rank_rng", "save_state", "save_weights", "snapshot"
]


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A host copy of `model`'s weights as they are now (`save_weights` writes it later): a new best
    is kept in memory until the next `state.pt` write instead of hashing and writing a file per
    validation."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Write `state.pt` (torch pickle of tensors + plain data) atomically."""
    with atomic_write(run_dir / "state.pt", mode="wb") as fh:
        torch.save(state, fh)


def save_rank_rng(run_dir: Path, rank: int, state: dict[str, Any]) -> None:
    """RNG states of DDP rank `rank` > 0 (`rng.rank<r>.pt`), so a resumed DDP run keeps every stream."""
    with atomic_write(run_dir / f"rng.rank{rank}.pt", mode="wb") as fh:
        torch.save(state, fh)


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}); "
                        "the file is damaged") from None


def load_rank_rng(run_dir: Path, rank: int) -> dict[str, Any] | None:
    path = Path(run_dir) / f"rng.rank{rank}.pt"
    return _torch_load(path) if path.is_file() else None


def load_state(run_dir: Path) -> dict[str, Any]:
    """`state.pt` of a run to resume, after checking the run's saved weights and token table."""
    path = Path(run_dir) / "state.pt"
    if not path.is_file():
        raise UserError(f"{path}: not found; this run has no resumable state")
    verify_run_files(run_dir)
    state = _torch_load(path)
    if not isinstance(state, dict) or "counters" not in state:
        raise UserError(f"{path}: not a scalerec training state (no counters)")
    return state
