"""CLI command for the 'train' stage: `scalerec train` (thin wrapper over `scalerec.train.train`)."""

from __future__ import annotations

from pathlib import Path

import typer


def train_cmd(
    data: Path | None = typer.Option(None, "--data", help="Dataset dir (from `scalerec data prepare`)."),
    tokens: Path | None = typer.Option(
        None, "--tokens", help="Token table dir (from `scalerec text train`)."
    ),
    size: str | None = typer.Option(
        None, "--size", help="Model size from the ladder (tiny, xs, s, m, ..., paper-1M)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Runs root; the run is written to OUT/NAME."),
    name: str | None = typer.Option(
        None, "--name", help="Run name (default: a hash of the resolved config)."
    ),
    recipe: str | None = typer.Option(
        None, "--recipe", help="Recipe preset: default or paper (the study's)."
    ),
    encoder: str | None = typer.Option(
        None, "--encoder", help="Item encoder: text (default), id (SASRec) or hybrid (text + id)."
    ),
    config: Path | None = typer.Option(None, "--config", help="TOML file with RunConfig sections."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a key, e.g. --set train.lr=3e-4 (repeatable)."
    ),
    resume: Path | None = typer.Option(None, "--resume", help="Continue this run dir from its state.pt."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing run of this name (kept until the new one finishes)."
    ),
    extend: Path | None = typer.Option(
        None, "--extend", help="Continue this run dir, which its time box stopped, up to a larger "
        "train.max_minutes (--set; it counts the run's whole training time); the old result is kept "
        "until the longer run finishes.",
    ),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow URI ('off' = none)."),
) -> None:
    """Train a sequential recommender and write a run dir.

    The run dir holds config.toml, metrics.jsonl, model.safetensors + meta.json (best validation
    NDCG@10), state.pt (for --resume) and final.json (written last: params, FLOPs, targets seen,
    valid/test metrics). Config precedence: size ladder < recipe < --config < --set < flags.
    Under torchrun, one process per device trains with DDP.
    """
    from rich.console import Console

    from scalerec.errors import UserError
    from scalerec.train import train
    from scalerec.train.config import resolve_run_config

    flags = {
        "data.dataset": data,
        "data.tokens": tokens,
        "run.out": out,
        "run.name": name,
        "model.item_encoder": encoder,
        "run.device": device,
        "run.tracking_uri": tracking_uri,
    }
    if resume is not None and extend is not None:
        raise UserError("--resume and --extend exclude each other: give the run dir to one of them")
    continued = resume if resume is not None else extend
    if continued is not None:
        option = "--resume" if resume is not None else "--extend"
        toml = continued / "config.toml"
        if not toml.is_file():
            raise UserError(f"{toml}: not found; {option} needs a run dir written by `scalerec train`")
        run_flags = {"run.out": continued.parent, "run.name": continued.name}
        cfg = resolve_run_config(toml, set_, flags={**flags, **run_flags})
    else:
        if data is None and config is None:
            raise UserError("--data is required (a dataset dir from `scalerec data prepare`)")
        cfg = resolve_run_config(config, set_, size=size, recipe=recipe, flags=flags)
    summary = train(cfg, resume=resume is not None, overwrite=overwrite, extend=extend is not None)
    if not summary.completed:
        if extend is not None:
            hint = f"the time-stopped run is untouched; the same --extend {extend} continues from here"
        elif summary.run_dir.name.startswith("."):
            hint = "the run it replaces is untouched"
        else:
            hint = f"continue with --resume {summary.run_dir}"
        Console().print(f"[yellow]stopped[/yellow] before the end ({summary.run_dir}); {hint}")
        return
    final = summary.final
    ndcg = final.get("test", {}).get("ndcg@10", float("nan"))
    Console().print(
        f"[green]trained[/green] {final.get('params', {}).get('non_embedding', 0):,} non-emb params, "
        f"{final.get('targets_seen', 0):,} targets, test NDCG@10 {ndcg:.4f} → {summary.run_dir}"
    )


def register(app: typer.Typer) -> None:
    """Attach this stage's commands to the main app."""
    app.command("train")(train_cmd)
