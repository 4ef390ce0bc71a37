"""The `scalerec` command: one Typer app whose subcommands are the stages of the pipeline.

Each stage's commands live in `scalerec.commands.<stage>` and call one public library function;
this module only assembles them and turns user errors into one line and exit code 2 (tracebacks
only with `--debug`).
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from scalerec import __version__
from scalerec.commands import config, data, evaluate, scaling, serve, text, train, transfer
from scalerec.commands import demo as demo_cmd
from scalerec.errors import UserError

app = typer.Typer(
    name="scalerec",
    help="Pretrain, scale and transfer text-based sequential recommenders.\n\n"
    "Stages: data → text → train → evaluate → sweep/fit/report → finetune → recommend/serve. "
    "Start with `scalerec demo` to run the whole chain on built-in synthetic data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scalerec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Pretrain, scale and transfer text-based sequential recommenders."""
    if debug:
        os.environ["SCALEREC_DEBUG"] = "1"


for _module in (data, text, train, evaluate, scaling, transfer, serve, demo_cmd, config):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, printing user errors as one line (exit code 2).

    Click's standalone mode already reports usage errors (exit 2); errors raised by the stages
    arrive here as `UserError` or a missing file.
    """
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or os.environ.get("SCALEREC_DEBUG")
    try:
        app(args=argv)
    except UserError as exc:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except FileNotFoundError as exc:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] file not found: {exc.filename or exc}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
