"""The pretrained checkpoints a user can fine-tune from: list them, and load one by name.

A pretrained checkpoint is any complete training run (`final.json` + `meta.json` +
`model.safetensors`) under a root (default `runs/`, where `scalerec train` writes). Fine-tuning
outputs have no `final.json`, so they are not listed. `scalerec pretrained` prints the listing;
`scalerec finetune --from NAME` resolves NAME here (a path, a path relative to the root, or a run
dir name that is unique under the root).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalerec.errors import UserError

MAX_DEPTH = 4
"""Directory levels searched below the root (sweeps nest runs as <sweep>/runs/<id>)."""


@dataclass
class PretrainedEntry:
    """One listed checkpoint: where it is and what the user needs to pick it."""

    name: str  # path relative to the root
    path: Path
    size: str | None
    encoder: str | None
    params: int | None  # non-embedding parameters
    dataset: str | None
    data: dict[str, Any]  # the dataset card's counts (users, items, interactions), when found
    valid_ndcg10: float | None
    test_ndcg10: float | None
    targets_seen: int | None


def _read(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _card(dataset: str | None) -> dict[str, Any]:
    if not dataset:
        return {}
    card = _read(Path(dataset) / "card.json")
    return {k: card[k] for k in ("n_users", "n_items", "n_interactions") if k in card}


def _is_run(d: Path) -> bool:
    return all((d / f).is_file() for f in ("final.json", "meta.json", "model.safetensors"))


def _run_dirs(root: Path) -> list[Path]:
    found, frontier = [], [root]
    for _ in range(MAX_DEPTH + 1):
        nxt = []
        for d in frontier:
            if _is_run(d):
                found.append(d)
                continue
            nxt += [c for c in sorted(d.iterdir()) if c.is_dir() and not c.name.startswith(".")]
        frontier = nxt
    return found


def entry(run: Path, root: Path) -> PretrainedEntry:
    final, meta = _read(run / "final.json"), _read(run / "meta.json")
    mcfg = meta.get("model_config") or {}
    dataset = final.get("dataset") or meta.get("dataset_dir")
    return PretrainedEntry(
        name=str(run.relative_to(root)) if run != root else run.name,
        path=run,
        size=final.get("model_size"),
        encoder=mcfg.get("item_encoder"),
        params=(final.get("params") or {}).get("non_embedding"),
        dataset=dataset,
        data=_card(dataset),
        valid_ndcg10=(final.get("valid") or {}).get("ndcg@10"),
        test_ndcg10=(final.get("test") or {}).get("ndcg@10"),
        targets_seen=final.get("targets_seen"),
    )


def list_pretrained(root: str | Path = "runs") -> list[PretrainedEntry]:
    """Every complete run under `root`, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such directory (pass --root, the --out of `scalerec train`)")
    return [entry(d, root) for d in _run_dirs(root)]


def resolve(name: str | Path, root: str | Path = "runs") -> Path:
    """The run dir named `name`: an existing dir, a path relative to `root`, or a unique run dir name
    under `root`."""
    path = Path(name)
    if path.is_dir():
        return path
    root = Path(root)
    if (root / path).is_dir():
        return root / path
    matches = [d for d in (_run_dirs(root) if root.is_dir() else []) if d.name == path.name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(f"--from {name}: no such run dir, and no complete run named so under {root} "
                        "(see `scalerec pretrained --root DIR`)")
    listed = ", ".join(str(m.relative_to(root)) for m in matches)
    raise UserError(
        f"--from {name}: {len(matches)} runs have this name under {root} ({listed}); give the path"
    )
