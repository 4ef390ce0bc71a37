"""CLI commands of the 'serve' stage: one-off recommendations (`recommend`) and the HTTP server (`serve`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from scalerec.errors import UserError

_CONFIG = typer.Option(None, "--config", help="TOML file with serve settings (see ServeConfig).")
_SET = typer.Option(None, "--set", help="Override a setting, e.g. index.kind=ivf or max_k=50 (repeatable).")
_UNFINISHED = typer.Option(False, "--allow-unfinished", help="Use a run without final.json.")


def _serve_config(config: Path | None, overrides: list[str] | None, base: dict | None = None):
    from scalerec.config import load
    from scalerec.serve.recommender import ServeConfig

    return load(ServeConfig, toml=config, overrides=overrides, base=base)


def _json_score(score: float) -> float | None:
    """A score as JSON allows it: NaN/Infinity are not JSON (strict parsers reject the whole line), so
    a non-finite score is written as null, as the HTTP API's encoder does."""
    return score if math.isfinite(score) else None


def recommend(
    run: Path = typer.Argument(..., help="Run dir of a trained model (has meta.json)."),
    history: str = typer.Option(..., "--history", help="Comma-separated item keys, oldest first."),
    k: int = typer.Option(10, "--k", help="How many items to recommend."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    include_seen: bool = typer.Option(False, "--include-seen", help="Allow items of the history."),
    device: str = typer.Option("cpu", "--device", help="Torch device for the model."),
    config: Path | None = _CONFIG,
    overrides: list[str] | None = _SET,
    allow_unfinished: bool = _UNFINISHED,
) -> None:
    """Print the top-k next items for a history of item keys (key, title, score); unknown keys are
    ignored and listed. The catalog is searched exactly unless `--set index.kind=...` says otherwise."""
    from rich.console import Console
    from rich.table import Table

    from scalerec.serve.run_encoder import load_recommender

    cfg = _serve_config(config, overrides, base={"index": {"kind": "exact"}})
    keys = [key.strip() for key in history.split(",") if key.strip()]
    rec = load_recommender(run, cfg, device, allow_unfinished=allow_unfinished)
    result = rec.recommend(keys, k, exclude_seen=not include_seen)
    if as_json:
        items = [{"key": s.key, "title": s.title, "score": _json_score(s.score)} for s in result.items]
        answer = {"items": items, "unknown": result.unknown, "used": result.used}
        typer.echo(json.dumps(answer, allow_nan=False))
        return
    table = Table(title=f"top {k} after {result.used} item(s)")
    table.add_column("#", justify="right")
    table.add_column("key")
    table.add_column("title")
    table.add_column("score", justify="right")
    for rank, s in enumerate(result.items, 1):
        table.add_row(str(rank), s.key, s.title, f"{s.score:.4f}")
    console = Console()
    console.print(table)
    if result.unknown:
        console.print(f"[yellow]ignored unknown keys:[/] {', '.join(result.unknown)}")


def serve(
    run: Path = typer.Argument(..., help="Run dir of a trained model (has meta.json)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    device: str = typer.Option("cpu", "--device", help="Torch device for the model."),
    search_threads: int = typer.Option(1, "--search-threads", help="CPU threads per search, after start-up."),
    dtype: str = typer.Option(
        "float32", "--dtype", help="Precision of the transformer on histories: float32 or bfloat16."
    ),
    engine: str = typer.Option(
        "eager",
        "--engine",
        help="How histories are encoded: eager, jit (traced) or int8 (dynamic int8 linears, "
        "~3x faster on CPU; recall is measured against the fp32 model).",
    ),
    config: Path | None = _CONFIG,
    overrides: list[str] | None = _SET,
    allow_unfinished: bool = _UNFINISHED,
) -> None:
    """Serve recommendations over HTTP (FastAPI + Uvicorn): POST /recommend, /recommend/batch, /items;
    GET /items/{key}, /healthz; docs at /docs. Item vectors and the index are built at start-up and
    the index's recall@10 against exact search is printed."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError("scalerec serve needs FastAPI and Uvicorn: pip install 'scalerec[serve]'") from None
    from rich.console import Console

    from scalerec.serve.api import create_app
    from scalerec.serve.index import set_search_threads
    from scalerec.serve.query_engine import QUERY_ENGINES
    from scalerec.serve.run_encoder import load_recommender
    from scalerec.serve.server import serve as serve_app

    if engine not in QUERY_ENGINES:
        raise UserError(f"--engine must be one of {', '.join(QUERY_ENGINES)}, got {engine!r}")
    cfg = _serve_config(config, overrides)
    rec = load_recommender(run, cfg, device, dtype=dtype, allow_unfinished=allow_unfinished, engine=engine)
    set_search_threads(search_threads)
    report = rec.index.report
    held_out = (
        f", {report['held_out_recall@10']} on {report['held_out_queries']} histories not tuned on"
        if "held_out_recall@10" in report
        else ""
    )
    Console().print(
        f"[green]serving[/] {len(rec)} items from {run} on http://{host}:{port} "
        f"(index {report['kind']}, recall@10 vs exact {report['recall@10']}{held_out}, "
        f"built in {report['build_s']} s)"
    )
    if report.get("target_met") is False:
        Console().print(f"[yellow]warning:[/] {report['shortfall']}")
    serve_app(create_app(rec), host, port)


def register(app: typer.Typer) -> None:
    """Attach this stage's commands to the main app."""
    app.command("recommend")(recommend)
    app.command("serve")(serve)
