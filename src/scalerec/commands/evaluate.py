"""CLI command for the 'evaluate' stage: exact full-ranking metrics of a run beside most-popular."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def _cell(m: dict[str, float]) -> str:
    if "low" in m:
        return f"{m['mean']:.4f} [{m['low']:.4f}, {m['high']:.4f}]"
    return f"{m['mean']:.4f}"


def _table(report: dict[str, Any], other: dict[str, Any] | None = None) -> Any:
    from rich.table import Table

    title = (f"{report['split']} split · {report['n_users']:,} users × {report['n_items']:,} items · "
             f"full ranking{' · seen items masked' if report['mask_seen'] else ''}")
    caption = "95% bootstrap CI over users in brackets; ties count against the model"
    table = Table(title=title, caption=caption)
    table.add_column("metric")
    table.add_column("model", justify="right")
    if other is not None:
        table.add_column(f"baseline run {Path(other['run_dir']).name}", justify="right")
    table.add_column("most-popular", justify="right")
    table.add_column("model / most-pop", justify="right")
    for name, m in report["model"].items():
        base = report["most_popular"][name]
        ratio = f"{m['mean'] / base['mean']:.2f}×" if base["mean"] > 0 else "—"
        extra = [_cell(other["model"][name])] if other is not None and name in other["model"] else []
        extra = extra or ([""] if other is not None else [])
        table.add_row(name, _cell(m), *extra, _cell(base), ratio)
    sampled = {k: v for k, v in report.get("sampled", {}).items() if k.endswith(("ndcg@10", "hr@10"))}
    for name, value in sampled.items():
        pad = ["", "", ""] if other is not None else ["", ""]
        table.add_row(f"[dim]{name}[/dim]", f"[dim]{value:.4f}[/dim]", *pad)
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
    baseline: Path | None = typer.Option(
        None, "--baseline", help="Another run dir (e.g. ID-SASRec) evaluated the same way, shown beside."
    ),
    allow_unfinished: bool = typer.Option(
        False, "--allow-unfinished", help="Evaluate a run without final.json (its last best weights)."
    ),
) -> None:
    """Rank every user's held-out item against the whole catalog; report NDCG/HR/MRR@k.

    Loads the run's model (RUN/meta.json, model.safetensors) and its dataset's
    leave-one-out split. Ties count against the model. Every metric gets a 95%
    bootstrap confidence interval over users, beside a most-popular baseline on
    the same users (and, with --baseline, another run such as ID-SASRec).
    Sampled metrics (target vs N negatives) are listed apart, dimmed, only to
    compare with papers. Writes RUN/eval.json (test split, unmasked) or
    RUN/eval_<split>[_masked].json. Unfinished runs (no final.json) and runs whose
    files no longer match the hashes in meta.json are refused.
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
    kwargs: dict[str, Any] = dict(
        split=split, mask_seen=mask_seen, ks=k_list, bootstrap=bootstrap, seed=seed, device=device,
        dataset=dataset, max_users=max_users, sampled_negatives=sampled, allow_unfinished=allow_unfinished,
    )
    report = evaluate_run(run, **kwargs)
    other = evaluate_run(baseline, **kwargs) if baseline is not None else None
    if other is not None and (other["n_users"], other["n_items"]) != (report["n_users"], report["n_items"]):
        raise UserError(f"--baseline {baseline} was trained on another dataset ({other['n_users']} users)")
    console = Console()
    if as_json:
        print(json.dumps({**report, "baseline_run": other} if other else report, indent=2))
        return
    console.print(_table(report, other))
    m, b = report["model"].get("ndcg@10"), report["most_popular"].get("ndcg@10")
    head = f"NDCG@10 {m['mean']:.4f} (most-popular {b['mean']:.4f}) · " if m and b else ""
    console.print(f"[green]evaluated[/green] {head}→ {report['path']}")


def register(app: typer.Typer) -> None:
    """Attach this stage's commands to the main app."""
    app.command("evaluate")(evaluate)
