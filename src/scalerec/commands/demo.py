"""CLI command for the built-in demo of the whole chain on synthetic data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def demo(
    out: Path = typer.Option(Path("scalerec-demo"), "--out", help="Folder for everything the demo writes."),
    interactions: int = typer.Option(
        120_000, "--interactions", help="Synthetic interactions (pretraining domain)."
    ),
    epochs: float = typer.Option(6.0, "--epochs", help="Epochs of the two main training runs."),
    sweep: bool = typer.Option(True, "--sweep/--no-sweep", help="Run the small scaling sweep and report."),
    finetune: bool = typer.Option(True, "--finetune/--no-finetune", help="Fine-tune to a second domain."),
    seed: int = typer.Option(0, "--seed", help="Seed of data, model and sampling."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """Run the whole chain on built-in synthetic data (no download) and print where it wrote.

    synth → prepare → tokenizer → train two model sizes → full-ranking evaluation vs most-popular →
    small scaling sweep with fits and report → fine-tune to a second domain → recommend.
    """
    from scalerec.demo import DemoConfig, run_demo

    console = Console()
    cfg = DemoConfig(
        out=out,
        interactions=interactions,
        epochs=epochs,
        sweep=sweep,
        finetune=finetune,
        seed=seed,
        device=device,
    )
    result = run_demo(cfg, console)
    table = Table(title="full-ranking test metrics (synthetic)")
    for col in ("model", "NDCG@10", "HR@10", "MRR@10"):
        table.add_column(col)
    for name, m in result.metrics.items():
        table.add_row(
            name, f"{m.get('ndcg@10', 0):.4f}", f"{m.get('hr@10', 0):.4f}", f"{m.get('mrr@10', 0):.4f}"
        )
    console.print(table)
    for key, path in result.paths.items():
        console.print(f"[bold]{key}[/]: {path}")


def register(app: typer.Typer) -> None:
    """Attach the demo command to the main app."""
    app.command("demo")(demo)
