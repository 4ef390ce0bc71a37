"""CLI commands for the 'text' stage: train the BPE tokenizer and build the item token table."""

from __future__ import annotations

from pathlib import Path

import typer


def text_train(
    data: Path = typer.Option(
        ..., "--data", help="Dataset dir with items.parquet (from `scalerec data prepare`)."
    ),
    out: Path = typer.Option(..., "--out", help="Output token table dir (written atomically)."),
    vocab_size: int | None = typer.Option(None, "--vocab-size", help="BPE vocabulary size (default 30000)."),
    tokenizer: Path | None = typer.Option(
        None,
        "--tokenizer",
        help="Reuse this pretrained tokenizer.json (or token table dir) instead of training.",
    ),
    config: Path | None = typer.Option(None, "--config", help="TOML file with TextConfig keys."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a config key, e.g. --set field_max_len.title=40."
    ),
) -> None:
    """Train a BPE tokenizer on item titles, brands and categories and write the item token table.

    Writes OUT/tokenizer.json, OUT/item_tokens.npz (token ids per item and field) and
    OUT/token_table.json (manifest). With --tokenizer, items are encoded with a pretrained
    tokenizer (for transfer to a new domain): unknown pieces become [UNK].
    """
    from rich.console import Console

    from scalerec.config import check_out_dir, resolve
    from scalerec.text import TextConfig, build_token_table

    cfg = resolve(TextConfig, toml=config, overrides=set_, flags={"vocab_size": vocab_size})
    check_out_dir(out)
    manifest = build_token_table(
        data,
        out,
        vocab_size=cfg.vocab_size,
        max_lens=cfg.field_max_len,
        tokenizer_path=tokenizer,
        min_frequency=cfg.min_frequency,
        empty_brand=cfg.empty_brand,
    )
    unk = max(s["unk_rate"] for s in manifest["field_stats"].values())
    Console().print(
        f"[green]token table[/green] {manifest['n_items']:,} items, vocab "
        f"{manifest['vocab_size']:,}, max unk rate {unk:.2%} → {out}"
    )


def register(app: typer.Typer) -> None:
    """Attach this stage's commands to the main app."""
    text_app = typer.Typer(
        help="Tokenizer and item token table (text features of items).", no_args_is_help=True
    )
    text_app.command("train")(text_train)
    app.add_typer(text_app, name="text")
