"""CLI command for the 'evaluate' stage: exact full-ranking metrics of a run beside most-popular."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def _cell(m: dict[str, float]) -> str:
    if "low" in m:
        return f"{m['mean']:.4f} [{m['low']:.4f}, {m['high']:.4f}]"
    return f"{m['mean']:.4f}"


def _table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    title = (f"{report['split']} split · {report['n_users']:,} users × {report['n_items']:,} items · "
             f"full ranking{' · seen items masked' if report['mask_seen'] else ''}")
    caption = "95% bootstrap CI over users in brackets; ties count against the model"
    table = Table(title=title, caption=caption)
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("most-popular", justify="right")
    table.add_column("ratio", justify="right")
    for name, m in report["model"].items():
        base = report["most_popular"][name]
        ratio = f"{m['mean'] / base['mean']:.2f}×" if base["mean"] > 0 else "—"
        table.add_row(name, _cell(m), _cell(base), ratio)
    sampled = {k: v for k, v in report.get("sampled", {}).items() if k.endswith(("ndcg@10", "hr@10"))}
    for name, value in sampled.items():
        table.add_row(f"[dim]{name}[/dim]", f"[dim]{value:.4f}[/dim]", "", "")
    return table


def evaluate(
    run: Path = typer.Argument(..., help="Run dir written by `scalerec train` (holds meta.json)."),
    split: str = typer.Option("test", "--split", help="Which leave-one-out split: test or valid."),
    mask_seen: bool = typer.Option(False, "--mask-seen", help="Remove items the user already saw."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a table."),
    ks: str = typer.Option("1,5,10,20,50", "--ks", help="Comma-separated cut-offs k."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the CIs (0 = none)."),
    sampled: int = typer.Option(100, "--sampled", help="Negatives for the sampled protocol (0 = skip)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    dataset: Path | None = typer.Option(None, "--dataset", help="Dataset dir, if moved since training."),
    max_users: int | None = typer.Option(None, "--max-users", help="Evaluate a fixed random subset."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and of sampled negatives."),
) -> None:
    """Rank every user's held-out item against the whole catalog and report NDCG/HR/MRR@k.

    Uses the run's model (from RUN/meta.json and model.safetensors) on its dataset's leave-one-out
    split, counts ties against the model, and reports 95% bootstrap confidence intervals over users
    beside a most-popular baseline on the same users. Sampled metrics (target vs N negatives) are
    listed apart, dimmed, for comparison with papers only. Writes RUN/eval.json (test split,
    unmasked) or RUN/eval_<split>[_masked].json.
    """
    import json

    from rich.console import Console

    from scalerec.errors import UserError
    from scalerec.eval.evaluate import evaluate_run

    try:
        k_list = tuple(int(k) for k in ks.split(",") if k.strip())
    except ValueError:
        raise UserError(f"--ks expects comma-separated integers, got {ks!r}") from None
    if split not in ("test", "valid"):
        raise UserError(f"--split must be 'test' or 'valid', got {split!r}")
    report = evaluate_run(run, split=split, mask_seen=mask_seen, ks=k_list, bootstrap=bootstrap, seed=seed,
                          device=device, dataset=dataset, max_users=max_users, sampled_negatives=sampled)
    console = Console()
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(_table(report))
    m, b = report["model"].get("ndcg@10"), report["most_popular"].get("ndcg@10")
    head = f"NDCG@10 {m['mean']:.4f} (most-popular {b['mean']:.4f}) · " if m and b else ""
    console.print(f"[green]evaluated[/green] {head}→ {report['path']}")


def register(app: typer.Typer) -> None:
    """Attach this stage's commands to the main app."""
    app.command("evaluate")(evaluate)
