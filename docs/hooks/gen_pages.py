"""MkDocs hook: pages generated at build time, so the site cannot drift from the code.

- `reference/config.md`: every config key of every stage, with its type, default and the field's
  docstring, read from the typed dataclasses themselves (defaults by instantiating them, docstrings
  from the source, since Python does not keep attribute docstrings at runtime).
- `reference/cli.md`: every `scalerec` command with its options, walked from the Typer app.
- `benchmarks.md`, `changelog.md`: the repository's BENCHMARKS.md and CHANGELOG.md, with their links
  rewritten from the repository root to the site (`docs/x.md` → `x.md`).

Also importable on its own (`tests/docs/test_reference_pages.py` checks the generators).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# (section title, how the keys are set, dotted path of the config dataclass)
CONFIGS: list[tuple[str, str, str]] = [
    (
        "Training run",
        "`scalerec train --config F.toml --set section.key=value`",
        "scalerec.train.config.RunConfig",
    ),
    (
        "Dataset preparation",
        "`scalerec data prepare --config F.toml` or its flags",
        "scalerec.data.build.config.PrepareConfig",
    ),
    (
        "One domain of a pooled dataset",
        "`[[domains]]` tables of a prepare config",
        "scalerec.data.build.config.DomainSource",
    ),
    ("Token table", "`scalerec text train` flags", "scalerec.text.item_tokens.TextConfig"),
    ("Scaling sweep", "the sweep spec TOML of `scalerec sweep SPEC`", "scalerec.scaling.spec.SweepSpec"),
    (
        "Fine-tuning",
        "`scalerec finetune --config F.toml --set key=value`",
        "scalerec.transfer.finetune.FinetuneConfig",
    ),
    ("Serving", "`scalerec serve RUN --set key=value`", "scalerec.serve.recommender.ServeConfig"),
]


def _resolve(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal right under each annotated field)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _show(value: Any) -> str:
    if value is dataclasses.MISSING:
        return "*required*"
    if value is None:
        return "unset"
    if isinstance(value, Path):
        value = str(value)
    return f"`{value!r}`"  # a pipe inside a code span does not split a Markdown table cell


def config_rows(cls: type, prefix: str = "") -> list[dict[str, str]]:
    """One row per leaf key (`section.key`), nested dataclasses flattened into dotted sections."""
    docs = field_docs(cls)
    rows: list[dict[str, str]] = []
    for f in dataclasses.fields(cls):
        value = _default(f)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            rows += config_rows(type(value), f"{prefix}{f.name}.")
            continue
        rows.append(
            {
                "key": prefix + f.name,
                "type": str(f.type),
                "default": _show(value),
                "doc": docs.get(f.name, ""),
            }
        )
    return rows


def config_page() -> str:
    out = [
        "# Config keys",
        "",
        "Every key of every stage's typed config, with its default and what it is for; generated "
        "from the dataclasses at build time. Precedence: dataclass defaults < preset (size ladder, "
        "recipe) < TOML file < `--set key=value` < explicit command-line flags. Unknown keys are an "
        "error that suggests the nearest key.",
        "",
    ]
    for title, how, dotted in CONFIGS:
        cls = _resolve(dotted)
        out += [
            f"## {title}",
            "",
            f"`{dotted}` — set with {how}.",
            "",
            "| key | type | default | what it is for |",
            "|---|---|---|---|",
        ]
        for r in config_rows(cls):
            doc = r["doc"].replace("|", "\\|")
            out.append(f"| `{r['key']}` | `{r['type']}` | {r['default']} | {doc} |")
        out.append("")
    return "\n".join(out)


def _command_md(cmd: Any, path: str, ctx: Any, level: int) -> list[str]:
    import click

    out = [f"{'#' * level} `{path}`", ""]
    if cmd.help:
        out += [inspect.cleandoc(cmd.help), ""]
    sub_ctx = click.Context(cmd, info_name=path.split()[-1], parent=ctx)
    pieces = cmd.collect_usage_pieces(sub_ctx)
    out += ["```text", f"{path} {' '.join(pieces)}".rstrip(), "```", ""]
    rows = []
    for p in cmd.get_params(sub_ctx):
        record = p.get_help_record(sub_ctx)
        if record is None:
            if getattr(p, "param_type_name", "") == "argument":
                rows.append((p.human_readable_name, getattr(p, "help", "") or ""))
            continue
        rows.append(record)
    if rows:
        out += ["| argument / option | description |", "|---|---|"]
        for names, text in rows:
            text = " ".join(str(text).split()).replace("|", "\\|")
            out.append(f"| `{names}` | {text} |")
        out.append("")
    if hasattr(cmd, "list_commands"):  # a group (Typer's groups are not click.Group subclasses)
        for name in cmd.list_commands(sub_ctx):
            sub = cmd.get_command(sub_ctx, name)
            if sub is not None and not sub.hidden:
                out += _command_md(sub, f"{path} {name}", sub_ctx, min(level + 1, 4))
    return out


def cli_page() -> str:
    import click
    import typer

    from scalerec.cli import app

    root = typer.main.get_command(app)
    ctx = click.Context(root, info_name="scalerec")
    out = [
        "# Command line",
        "",
        "Every `scalerec` command and option, generated from the Typer app at "
        "build time (the same text as `scalerec COMMAND --help`). Errors in user input print one "
        "line and exit with code 2; add `--debug` for a traceback.",
        "",
    ]
    for name in root.list_commands(ctx):  # type: ignore[attr-defined]
        cmd = root.get_command(ctx, name)  # type: ignore[attr-defined]
        if cmd is not None and not cmd.hidden:
            out += _command_md(cmd, f"scalerec {name}", ctx, 2)
    return "\n".join(out)


_LINKS = [
    (re.compile(r"\]\(docs/"), "]("),
    (re.compile(r"\]\(CHANGELOG\.md"), "](changelog.md"),
    (re.compile(r"\]\(BENCHMARKS\.md"), "](benchmarks.md"),
    (re.compile(r"\]\(README\.md"), "](index.md"),
]


def root_page(name: str) -> str:
    """A repository-root Markdown file with its links made relative to the docs dir."""
    text = (ROOT / name).read_text(encoding="utf-8")
    for pattern, repl in _LINKS:
        text = pattern.sub(repl, text)
    return text


GENERATED = {
    "reference/config.md": config_page,
    "reference/cli.md": cli_page,
    "benchmarks.md": lambda: root_page("BENCHMARKS.md"),
    "changelog.md": lambda: root_page("CHANGELOG.md"),
}


def on_files(files: Any, config: Any) -> Any:
    """MkDocs event: add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    for uri, make in GENERATED.items():
        files.append(File.generated(config, uri, content=make()))
    return files
