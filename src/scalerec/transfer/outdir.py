"""Where a fine-tuning run writes, so two experiments never collide and nothing else is replaced.

`finetune --out` used to default to `runs/finetune/<strategy>`: a second experiment with the same
strategy silently replaced the first. The default is now a new dir per run, named after what it
is (pretrained run, target, strategy, fraction, seed) plus a timestamp; an explicit `--out` may
replace only an earlier fine-tuning output (recognised by its `transfer.json`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from scalerec.errors import UserError

MARKER = "transfer.json"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", text).strip("-.")[:40] or "run"


def default_out(root: str | Path, pretrained: Path, target: str | Path, strategy: str, fraction: float,
                seed: int) -> Path:
    """`<root>/finetune/<pretrained>-<target>-<strategy>[-f<fraction>]-s<seed>-<YYYYmmdd-HHMMSS>`, with
    a counter when that exists already."""
    parts = [_slug(Path(pretrained).name), _slug(Path(target).name), strategy]
    parts += [f"f{fraction:g}"] if fraction < 1 else []
    parts += [f"s{seed}", time.strftime("%Y%m%d-%H%M%S")]
    base = Path(root) / "finetune" / "-".join(parts)
    out, n = base, 1
    while out.exists() or out.with_name(f".{out.name}.lock").exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def check_out(out: Path, inputs: list[Path]) -> None:
    """Refuse an `--out` that holds anything but an earlier fine-tuning output, or that lies inside
    one of the inputs (replacing it would delete them)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pick a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UserError(f"--out {out} is not empty and holds no {MARKER} (not a fine-tuning output); "
                        "pick another --out or leave it unset for a new run dir")
    resolved = out.resolve()
    for src in inputs:
        src = src.resolve()
        if resolved == src or src in resolved.parents or resolved in src.parents:
            raise UserError(f"--out {out} overlaps the input {src}; pick a dir outside it")
