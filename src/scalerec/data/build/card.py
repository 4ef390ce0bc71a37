"""The dataset card: what went in, every parameter, and what each step kept and dropped.

A dataset is only comparable across papers when its counts are known after every filter; the
card makes those numbers part of the artifact (`card.json` for code, `CARD.md` for people) so
"Beauty has 22,363 users" is checked, not remembered. `format_version` lets readers refuse cards
they do not understand.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.errors import UserError
from scalerec.io import atomic_write, read_json, sha256_file, write_json

FORMAT_VERSION = 1


def step_stats(name: str, user_ids: Any, item_ids: Any, dense: bool = True) -> dict[str, Any]:
    """Counts for one pipeline step from int user/item id arrays (small non-negative codes)."""
    users = np.asarray(user_ids)
    if len(users) == 0:
        return counts_stats(name, np.zeros(0, dtype=np.int64), 0)
    per_user = np.bincount(users)
    n_items = int((np.bincount(np.asarray(item_ids)) > 0).sum())
    return counts_stats(name, per_user[per_user > 0], n_items)


def counts_stats(name: str, per_user: Any, n_items: int) -> dict[str, Any]:
    """The card's counts for one step from the interactions per user (any order) and the item count."""
    n = int(np.sum(per_user))
    if n == 0:
        return {"step": name, "rows": 0, "users": 0, "items": 0, "per_user": {}, "sparsity": None}
    q = np.quantile(per_user, [0.0, 0.25, 0.5, 0.75, 0.95, 1.0])
    return {
        "step": name,
        "rows": n,
        "users": int(len(per_user)),
        "items": n_items,
        "per_user": {
            "min": int(q[0]),
            "p25": float(q[1]),
            "p50": float(q[2]),
            "p75": float(q[3]),
            "p95": float(q[4]),
            "max": int(q[5]),
            "mean": round(float(np.mean(per_user)), 3),
        },
        "sparsity": round(1.0 - n / (len(per_user) * max(n_items, 1)), 6),
    }


class StepSum:
    """One pipeline step summed over shards: rows, histogram of rows per user, items present."""

    def __init__(self, n_items: int) -> None:
        self.rows = 0
        self.hist = np.zeros(1, dtype=np.int64)
        self.items = np.zeros(n_items, dtype=bool)

    def add(self, users: np.ndarray, items: np.ndarray) -> None:
        if not len(users):
            return
        self.rows += len(users)
        per_user = np.bincount(users - users.min())
        h = np.bincount(per_user[per_user > 0])
        if len(h) > len(self.hist):
            h[: len(self.hist)] += self.hist
            self.hist = h
        else:
            self.hist[: len(h)] += h
        self.items[items] = True

    def stats(self, name: str) -> dict[str, Any]:
        """Exactly `scalerec.data.build.card.step_stats` of the concatenated rows (quantiles and the mean
        do not depend on the order of the per-user counts; their integer sums are exact)."""
        return counts_stats(name, np.repeat(np.arange(len(self.hist)), self.hist), int(self.items.sum()))


def content_hash(inter: Any) -> str:
    """Short SHA-256 of the (user_id, item_id, timestamp) columns: identifies a dataset's content."""
    h = hashlib.sha256()
    for col in ("user_id", "item_id", "timestamp"):
        h.update(np.ascontiguousarray(inter[col].to_numpy()).tobytes())
    return h.hexdigest()[:16]


def source_files(paths: list[Path]) -> list[dict[str, Any]]:
    """Name, size and SHA-256 of each input file (streamed)."""
    return [{"path": str(p), "bytes": Path(p).stat().st_size, "sha256": sha256_file(p)} for p in paths]


def render_markdown(card: dict[str, Any]) -> str:
    """Human-readable CARD.md."""
    lines = [
        f"# Dataset card: {card.get('name', '')}",
        "",
        f"- users: {card['n_users']:,}  items: {card['n_items']:,}  interactions: {card['n_interactions']:,}",
        f"- source: `{card['source'].get('format')}`",
        "",
    ]
    lines += ["## Source files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    lines += [
        f"| `{f['path']}` | {f['bytes']:,} | `{f['sha256'][:16]}…` |" for f in card["source"].get("files", [])
    ]
    lines += [
        "",
        "## Steps",
        "",
        "| step | rows | users | items | per-user p50 | sparsity |",
        "|---|---|---|---|---|---|",
    ]
    for s in card["steps"]:
        lines.append(
            f"| {s['step']} | {s['rows']:,} | {s['users']:,} | {s['items']:,} | "
            f"{s['per_user'].get('p50', '-')} | {s['sparsity']} |"
        )
    lines += ["", "## Dropped rows by reason", ""]
    lines += [f"- {k}: {v:,}" for k, v in card["dropped"].items()] or ["- none"]
    parse = card.get("parse", {})
    if parse.get("counts"):
        lines += ["", "## Malformed lines", ""] + [f"- {k}: {v:,}" for k, v in parse["counts"].items()]
        lines += ["", "Examples:", ""] + [
            f"- `{e['file']}:{e['line']}` {e['reason']}: `{e['text'][:80]}`"
            for e in parse.get("examples", [])
        ]
    if card.get("subsets"):
        lines += [
            "",
            "## Subsets (nested)",
            "",
            "| label | users | items | interactions |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {s['label']} | {s['n_users']:,} | {s['n_items']:,} | {s['n_interactions']:,} |"
            for s in card["subsets"]
        ]
    lines += [
        "",
        "## Parameters",
        "",
        "```",
        *[f"{k} = {v!r}" for k, v in card.get("params", {}).items()],
        "```",
        "",
    ]
    return "\n".join(lines)


def write_card(dataset_dir: Path, card: dict[str, Any]) -> None:
    write_json(Path(dataset_dir) / "card.json", card)
    with atomic_write(Path(dataset_dir) / "CARD.md") as fh:
        fh.write(render_markdown(card))


def read_card(dataset_dir: str | Path) -> dict[str, Any]:
    """Load and version-check `card.json` of a dataset dir."""
    path = Path(dataset_dir) / "card.json"
    if not path.is_file():
        raise UserError(f"no dataset card at {path} (not a prepared dataset dir, or an interrupted one)")
    card = read_json(path)
    if card.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: format_version {card.get('format_version')} is not {FORMAT_VERSION}")
    return card
