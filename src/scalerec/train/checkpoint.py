"""Run-dir checkpoints: weights + `meta.json` (self-describing, nanochat style) and `state.pt` (resume).

`model.safetensors` + `meta.json` are what other stages load (`load_run`): the model is rebuilt
from the `ModelConfig` stored in `meta.json` and gets its item table from the run's token table, so
no original config file is needed. `state.pt` holds everything else a bit-for-bit resume needs
(last weights, optimizer, scheduler, RNG states, data position, counters). Every file is written
under a temporary name and moved into place, so a killed run never leaves a half-written file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scalerec.errors import UserError
from scalerec.io import atomic_write, read_json, write_json

FORMAT_VERSION = 1


@dataclass
class LoadedRun:
    """A trained model back from its run dir."""

    model: torch.nn.Module  # scalerec.model.SequentialRecommender, eval mode
    meta: dict[str, Any]
    cfg: Any  # scalerec.train.config.RunConfig, or None when config.toml is absent


def tokens_hash(tokens_dir: str | Path | None) -> str | None:
    """SHA-256 of the token table's manifest + tokenizer (identifies the vocabulary)."""
    if tokens_dir is None:
        return None
    h = hashlib.sha256()
    for name in ("token_table.json", "tokenizer.json"):
        path = Path(tokens_dir) / name
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def dataset_hash(dataset_dir: str | Path) -> str | None:
    """SHA-256 of the dataset card (which itself hashes the sources)."""
    card = Path(dataset_dir) / "card.json"
    return hashlib.sha256(card.read_bytes()).hexdigest() if card.is_file() else None


def save_weights(run_dir: Path, model: torch.nn.Module, meta: dict[str, Any]) -> None:
    """Write `model.safetensors` and `meta.json` atomically (meta last)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = run_dir / f".model.safetensors.tmp-{id(state)}"
    save_file(state, str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
    tmp.replace(run_dir / "model.safetensors")
    write_json(run_dir / "meta.json", {"format_version": FORMAT_VERSION, **meta})


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Write `state.pt` (torch pickle of tensors + plain data) atomically."""
    with atomic_write(run_dir / "state.pt", mode="wb") as fh:
        torch.save(state, fh)


def save_rank_rng(run_dir: Path, rank: int, state: dict[str, Any]) -> None:
    """RNG states of DDP rank `rank` > 0 (`rng.rank<r>.pt`), so a resumed DDP run keeps every stream."""
    with atomic_write(run_dir / f"rng.rank{rank}.pt", mode="wb") as fh:
        torch.save(state, fh)


def load_rank_rng(run_dir: Path, rank: int) -> dict[str, Any] | None:
    path = Path(run_dir) / f"rng.rank{rank}.pt"
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


def load_state(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "state.pt"
    if not path.is_file():
        raise UserError(f"{path}: not found; this run has no resumable state")
    return torch.load(path, map_location="cpu", weights_only=False)


def model_meta(model_cfg: Any, tokens_dir: str | Path | None, dataset_dir: str | Path, step: int) -> dict:
    return {
        "model_config": dataclasses.asdict(model_cfg),
        "tokens_dir": str(Path(tokens_dir).resolve()) if tokens_dir else None,
        "tokenizer_hash": tokens_hash(tokens_dir),
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "dataset_hash": dataset_hash(dataset_dir),
        "step": step,
    }


def load_run(
    run_dir: str | Path, device: str | torch.device = "cpu", tokens_dir: str | Path | None = None
) -> LoadedRun:
    """Rebuild the model of a run dir from `meta.json`, load its weights, set its item table.

    `tokens_dir` overrides the token table recorded in `meta.json` (e.g. a moved run dir).
    """
    from safetensors.torch import load_file

    from scalerec.config import from_dict
    from scalerec.model import ModelConfig, SequentialRecommender

    run_dir = Path(run_dir)
    meta_path = run_dir / "meta.json"
    if not meta_path.is_file():
        raise UserError(f"{meta_path}: not found; is {run_dir} a training run dir?")
    meta = read_json(meta_path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{meta_path}: format_version {meta.get('format_version')} != {FORMAT_VERSION}")
    mcfg = from_dict(ModelConfig, meta["model_config"], prefix="meta.model_config")
    model = SequentialRecommender(mcfg)
    model.load_state_dict(load_file(str(run_dir / "model.safetensors")))
    model.to(device).eval()
    if mcfg.item_encoder == "text":
        from scalerec.text.item_tokens import load_item_tokens

        tdir = tokens_dir or meta.get("tokens_dir")
        if not tdir or not Path(tdir).is_dir():
            raise UserError(f"{meta_path}: token table {tdir} not found; pass tokens_dir")
        model.set_item_table(load_item_tokens(tdir).torch_tables())
    cfg = None
    if (run_dir / "config.toml").is_file():
        from scalerec.config import load
        from scalerec.train.config import RunConfig

        cfg = load(RunConfig, toml=run_dir / "config.toml")
    return LoadedRun(model, meta, cfg)


def read_final(run_dir: str | Path) -> dict[str, Any] | None:
    """`final.json` of a complete run, or None."""
    path = Path(run_dir) / "final.json"
    return json.loads(path.read_text()) if path.is_file() else None
