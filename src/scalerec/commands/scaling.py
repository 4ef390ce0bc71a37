"""CLI commands of the scaling stage: `sweep`, `fit`, `report` (thin wrappers over `scalerec.scaling`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()


def sweep(
    spec: Path = typer.Argument(..., help="Sweep spec TOML (see configs/sweeps/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Sweep dir: runs/, results.parquet, fits, report."),
    parallel: int = typer.Option(1, "--parallel", "-j", min=1, help="Runs trained at once (processes)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List runs with FLOPs and estimated time; train nothing."
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a spec field, e.g. --set epochs=2 (repeatable)."
    ),
    calibrate: bool = typer.Option(
        True,
        "--calibrate/--no-calibrate",
        help="--dry-run: time a short run of each size on this device (cached) instead of a FLOP rate.",
    ),
    adopt: Path | None = typer.Option(
        None,
        "--adopt",
        help="Another sweep's results.parquet (or its dir, e.g. a committed docs/results/<sweep>): its "
        "finished runs of the same config count as done here, so only what is new is trained.",
    ),
    only: list[str] = typer.Option(
        [],
        "--only",
        help="Train only the jobs with a run matching KEY=V1,V2 (size, subset, seed, encoder, holdout; "
        "repeatable, all must match), e.g. --only size=m2 to run a long held-out run alone; a branch "
        "brings its trunk. The other runs are left as they are.",
    ),
) -> None:
    """Run every missing run of a scaling sweep (sizes × data subsets × seeds × LRs).

    Complete runs (final.json present) are skipped, failed runs are retried and recorded with their
    error, and one row per run is written to OUT/results.parquet. With --adopt, runs found in another
    sweep's table under the same config are taken from it (their rows say `adopted_from`).
    """
    from scalerec.scaling.spec import load_spec
    from scalerec.scaling.sweep import RESULTS, parse_only, run_sweep

    rows = run_sweep(
        load_spec(spec, set_), out, parallel=parallel, dry_run=dry_run, calibrate=calibrate, adopt=adopt,
        only=parse_only(only),
    )
    if dry_run:
        _print_plan(rows)
        return
    n_ok = sum(r.get("status") == "ok" for r in rows)
    console.print(f"[bold green]sweep[/] {n_ok}/{len(rows)} runs ok → {out / RESULTS}")


def _print_plan(rows: list[dict]) -> None:
    from rich.table import Table

    table = Table(
        "run_id", "size", "subset", "seed", "lr", "role", "status", "N (non-emb)", "FLOPs", "est. s"
    )
    for r in rows:
        table.add_row(
            r["run_id"],
            r["size"],
            r["subset"],
            str(r["seed"]),
            f"{r['lr']:.2g}",
            r["role"] + (" holdout" if r["holdout"] else ""),
            r["status"],
            f"{r['n_params_non_embedding']:,}",
            f"{r['est_flops']:.3g}",
            f"{r['est_time_s']:.0f}",
        )
    console.print(table)
    todo = [r for r in rows if r["status"] not in ("done", "adopted")]
    sources = sorted({r["time_source"] for r in todo})
    console.print(
        f"{len(todo)} of {len(rows)} runs to do: {sum(r['est_new_flops'] for r in todo):.3g} FLOPs, "
        f"~{sum(r['est_time_s'] for r in todo) / 60:.1f} min ({', '.join(sources) or 'nothing to do'}"
        + (f" at {rows[0]['assumed_flops_per_s']:.3g} FLOP/s" if "flops_rate" in sources else "")
        + ")"
    )


def fit(
    out: Path = typer.Argument(..., help="Sweep dir holding results.parquet."),
    n_boot: int = typer.Option(100, "--n-boot", min=0, help="Bootstrap refits per law (95% CIs)."),
    holdout: float = typer.Option(
        0.2, "--holdout", help="Fraction of largest-FLOPs runs held out for the interpolation check."
    ),
) -> None:
    """Fit the scaling laws of a sweep (L(N), L(D), L(C), joint L(N,D), compute-optimal N*/D*,
    extrapolation test on held-out runs beyond the fitted range) on validation loss and NDCG@10, and
    write DIR/fits.json. Exponents the runs do not identify are reported as such, in words."""
    from scalerec.scaling.fits import fit as fit_laws
    from scalerec.scaling.fits import summary_lines

    res = fit_laws(out, n_boot=n_boot, holdout_frac=holdout)
    for line in summary_lines(res):
        console.print(line, highlight=False, markup=False, emoji=False, soft_wrap=True)
    console.print(f"[bold green]fit[/] → {out / 'fits.json'}")


def report(
    out: Path = typer.Argument(..., help="Sweep dir holding results.parquet (and fits.json)."),
    refit: bool = typer.Option(False, "--refit", help="Refit even when fits.json exists."),
    n_boot: int = typer.Option(100, "--n-boot", min=0, help="Bootstrap refits per law when fitting."),
) -> None:
    """Write DIR/report.html (self-contained, figures embedded) and DIR/figures/*.png: metric vs FLOPs
    by N and by D with the frontier, fitted laws with CI bands, iso-FLOP profiles, residuals,
    extrapolation check, coefficients with CIs and a table of every run."""
    from scalerec.scaling.report import report as write_report

    path = write_report(out, refit=refit, n_boot=n_boot)
    console.print(f"[bold green]report[/] → {path}")


def register(app: typer.Typer) -> None:
    """Attach this stage's commands to the main app."""
    app.command("sweep")(sweep)
    app.command("fit")(fit)
    app.command("report")(report)
