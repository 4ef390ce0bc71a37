"""CLI command `scalerec config show`: every config key of a stage with its default and docstring.

`reference_rows` is the library side (also what a generated docs page reads); the command prints it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any

import typer

from scalerec.config_docs import ConfigRow, config_rows
from scalerec.errors import UserError

# stage → (module, config class, how the stage takes it)
STAGES: dict[str, tuple[str, str, str]] = {
    "train": ("scalerec.train.config", "RunConfig", "scalerec train --config FILE --set section.key=value"),
    "data-prepare": (
        "scalerec.data.build.config", "PrepareConfig", "scalerec data prepare --config FILE --set k=v"
    ),
    "text-train": ("scalerec.text.item_tokens", "TextConfig", "scalerec text train --config FILE --set k=v"),
    "finetune": ("scalerec.transfer.finetune", "FinetuneConfig", "scalerec finetune --config FILE --set k=v"),
    "sweep": ("scalerec.scaling.spec", "SweepSpec", "scalerec sweep SPEC.toml --set key=value"),
    "serve": ("scalerec.serve.recommender", "ServeConfig", "scalerec serve RUN --config FILE --set k=v"),
}


def stage_config(stage: str, size: str | None = None, recipe: str | None = None) -> Any:
    """The config a stage starts from: its defaults (`train`: after the size ladder and recipe)."""
    if stage not in STAGES:
        raise UserError(f"config show: unknown stage {stage!r} (known: {', '.join(STAGES)})")
    if stage == "train":
        from scalerec.train.config import resolve_run_config

        return resolve_run_config(size=size, recipe=recipe)
    if size is not None or recipe is not None:
        raise UserError("--size and --recipe apply to the train stage only")
    module, name, _ = STAGES[stage]
    cls = getattr(importlib.import_module(module), name)
    if stage == "sweep":  # a spec must name a run length; show the budget unset
        spec = cls(epochs=1.0)
        spec.epochs = None
        return spec
    return cls()


def reference_rows(stage: str, size: str | None = None, recipe: str | None = None) -> list[ConfigRow]:
    """Every key of `stage`'s config: dotted key, type, default, declared range, docstring."""
    return config_rows(stage_config(stage, size, recipe))


def _section_docs(cfg: Any) -> dict[str, str]:
    return {f.name: (type(getattr(cfg, f.name)).__doc__ or "").strip() for f in dataclasses.fields(cfg)
            if dataclasses.is_dataclass(getattr(cfg, f.name))}


def show(
    stage: str = typer.Argument("train", help=f"Which stage's config: {', '.join(STAGES)}."),
    size: str | None = typer.Option(None, "--size", help="train: start from this model size's preset."),
    recipe: str | None = typer.Option(None, "--recipe", help="train: this recipe (default, paper)."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Print every config key of a stage with its default, allowed range and docstring.

    Keys are written as `--set` takes them; with --size/--recipe the defaults are those the
    preset gives (the precedence: defaults < preset < --config file < --set < flags).
    """
    cfg = stage_config(stage, size, recipe)
    rows = config_rows(cfg)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    typer.echo(render(stage, cfg, rows, size, recipe))


def render(stage: str, cfg: Any, rows: list[ConfigRow], size: str | None, recipe: str | None) -> str:
    """Plain text, one key per block, readable at any terminal width and in a pipe."""
    preset = "".join(f", {name} {value}" for name, value in (("size", size), ("recipe", recipe)) if value)
    lines = [f"# {stage} config{preset} — set with: {STAGES[stage][2]}"]
    sections, current = _section_docs(cfg), None
    for r in rows:
        section = r.key.split(".")[0] if "." in r.key else None
        if section != current and section in sections:
            lines += ["", f"[{section}]  {sections[section]}"]
        current = section
        kind = r.type + (f", in {r.range}" if r.range else "")
        lines.append(f"  {r.key} = {json.dumps(r.default)}    ({kind})")
        lines += [f"      {line}" for line in r.doc.splitlines()]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Attach `scalerec config show` to the main app."""
    config_app = typer.Typer(help="Config keys, defaults and documentation.", no_args_is_help=True)
    config_app.command("show")(show)
    app.add_typer(config_app, name="config")
