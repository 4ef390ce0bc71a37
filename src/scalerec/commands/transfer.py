"""CLI commands for the 'transfer' stage: fine-tune a pretrained run on a new domain, and the table."""

from __future__ import annotations

from pathlib import Path

import typer


def finetune_cmd(
    pretrained: Path = typer.Option(..., "--from", help="Pretrained run dir (holds final.json, meta.json)."),
    data: Path = typer.Option(..., "--data", help="Target dataset dir (from `scalerec data prepare`)."),
    strategy: str | None = typer.Option(
        None, "--strategy", "-s",
        help="zero-shot | scratch | id-scratch | full | freeze-transformer | only-embeddings | "
        "progressive | ewc (default full).",
    ),
    out: Path | None = typer.Option(None, "--out", help="Output dir (default runs/finetune/<strategy>)."),
    device: str | None = typer.Option(None, "--device", help="Torch device, e.g. cpu or cuda."),
    config: Path | None = typer.Option(None, "--config", help="TOML file with FinetuneConfig keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set epochs=5."),
) -> None:
    """Fine-tune a pretrained run on a new domain with one strategy, or evaluate it zero-shot.

    The target's item text is tokenized with the pretrained tokenizer (unknown pieces become
    [UNK]); negatives follow the target's training popularity. Reports NDCG@10/HR@10/MRR with
    bootstrap CIs overall and on cold-start targets (never in the target's training interactions),
    most-popular on the same users, and the source-domain metric before/after (forgetting).
    Writes OUT/transfer.json, OUT/ranks.npz, OUT/tokens/ and the fine-tuned weights.
    """
    from rich.console import Console

    from scalerec.config import check_out_dir, resolve
    from scalerec.transfer.finetune import FinetuneConfig, finetune

    flags = {"pretrained": pretrained, "data": data, "strategy": strategy, "device": device, "out": out}
    cfg = resolve(FinetuneConfig, toml=config, overrides=set_, flags=flags)
    if cfg.out:
        check_out_dir(cfg.out)
    summary = finetune(cfg)
    overall = summary["test"]["overall"]
    score = f"NDCG@10 {overall['ndcg@10']:.4f}" if "ndcg@10" in overall else overall.get("reason", "n/a")
    cold = summary["test"]["cold"]
    cold_txt = f"cold {cold['ndcg@10']:.4f}" if "ndcg@10" in cold else "cold: cannot score"
    Console().print(f"[green]finetune[/green] {cfg.strategy}: {score}, {cold_txt} → {summary['out']}")


def transfer_report_cmd(
    root: Path = typer.Argument(..., help="Directory holding fine-tuning outputs (any depth)."),
) -> None:
    """Build the transfer table from every fine-tuning output under ROOT.

    Strategy × (NDCG@10, HR@10, MRR) with CIs, cold-start NDCG@10, source metric before→after,
    training FLOPs and wall time; then whether fine-tuning beats scratch and ID-SASRec (paired
    bootstrap on the same test users) and whether zero-shot beats most-popular. Writes
    ROOT/transfer_report.md and ROOT/transfer_report.json.
    """
    from rich.console import Console

    from scalerec.transfer.report import transfer_report

    path = transfer_report(root)
    Console().print(f"[green]transfer report[/green] → {path}")


def register(app: typer.Typer) -> None:
    """Attach this stage's commands to the main app."""
    app.command("finetune")(finetune_cmd)
    app.command("transfer-report")(transfer_report_cmd)
