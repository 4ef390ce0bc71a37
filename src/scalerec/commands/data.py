"""CLI commands for the 'data' stage: synthesize raw dumps, prepare a dataset dir, print its card."""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(
    help="Raw dumps → clean dataset dirs (Parquet + card); synthetic dumps.", no_args_is_help=True
)


@data_app.command("synth")
def synth(
    fmt: str = typer.Option(
        "amazon2018",
        "--format",
        help="amazon2014, amazon2018, amazon2023, movielens-100k, movielens-1m or movielens-20m.",
    ),
    interactions: int = typer.Option(50_000, "--interactions", help="Number of interactions to generate."),
    out: Path = typer.Option(..., "--out", help="Output folder for the raw files."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed → same bytes)."),
    malformed_rate: float = typer.Option(
        0.0, "--malformed-rate", help="Fraction of lines to corrupt (and titles to make junk)."
    ),
    items: int | None = typer.Option(None, "--items", help="Catalog size (default: interactions / 20)."),
) -> None:
    """Write a synthetic raw dump in a real public format, with structure a model can learn.

    Items belong to topics (titles and brands from per-topic vocabularies, categories from the
    topic, Zipf popularity); users move between topics along a sparse transition matrix.
    """
    from rich.console import Console

    from scalerec.config import check_out_dir
    from scalerec.data import FORMATS, synthesize
    from scalerec.errors import UserError
    from scalerec.memory import require

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if interactions < 10 or not 0 <= malformed_rate < 0.5 or (items is not None and items < 1):
        raise UserError("--interactions must be >= 10, --items >= 1 and --malformed-rate in [0, 0.5)")
    check_out_dir(out)
    # amazon2018 streams (one int32 item id per rating stays in memory: 1.37 GiB peak at 100M, measured,
    # docs/results/etl/); the other formats build the dump in memory (peak RSS 325 MB at 400K measured)
    streamed = fmt == "amazon2018"
    need = (12 * interactions + 2**28) if streamed else 400 * interactions
    require(need, f"--interactions {interactions:,} ({'streamed' if streamed else 'generated in memory'})")
    paths = synthesize(fmt, interactions, out, seed=seed, malformed_rate=malformed_rate, n_items=items)
    Console().print(
        f"[green]synthetic {fmt}[/green] {interactions:,} interactions → "
        + ", ".join(f"{k}={v}" for k, v in paths.items())
    )


@data_app.command("prepare")
def prepare_cmd(
    source: str | None = typer.Option(
        None,
        "--source",
        help="amazon2014, amazon2018, amazon2023, movielens, recbole, s3rec, or csv (your own CSV/Parquet).",
    ),
    ratings: list[Path] = typer.Option(
        [],
        "--ratings",
        help="Interaction file(s): ratings CSV, reviews JSON "
        "lines, u.data/ratings.dat, RecBole .inter, S3Rec sequences, or your table (--source csv).",
    ),
    meta: list[Path] = typer.Option(
        [],
        "--meta",
        help="Item table(s): metadata JSON, movies file, .item, "
        "items.tsv.gz, datamaps.json.gz (repeat to merge).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Output dataset dir: new, empty, or an earlier `data prepare` output (replaced once the "
        "new one is complete). Any other existing path is refused, so nothing of yours is deleted.",
    ),
    columns: str | None = typer.Option(
        None,
        "--columns",
        help="--source csv: our=yours column mapping, e.g. user=customer,item=sku,timestamp=ts,rating=stars"
        " (item table: item, title, brand, categories).",
    ),
    min_users: int | None = typer.Option(
        None, "--min-users", help="Stop with exit 2 (and the top drop reasons) if fewer users are kept."
    ),
    subsets: str | None = typer.Option(None, "--subsets", help="Nested subset sizes, e.g. 100K,1M,10M."),
    strict: bool = typer.Option(
        False, "--strict", help="Stop at the first malformed line (default: skip and count it)."
    ),
    config: Path | None = typer.Option(None, "--config", help="TOML file with PrepareConfig keys."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set k_core=5."),
) -> None:
    """Turn raw dumps into a dataset dir: interactions/items/users Parquet, card.json and CARD.md.

    Steps: parse (lenient by default) → dedupe → join metadata, drop items without usable
    title → exclude users → min interactions per user / k-core → dense ids → nested subsets.
    A config with `[[domains]]` entries (e.g. configs/data/pooled.toml) builds one pooled
    multi-domain dataset.
    """
    from rich.console import Console

    from scalerec.config import check_out_dir, resolve
    from scalerec.data.build.config import PrepareConfig
    from scalerec.data.build.prepare import prepare

    flags = {
        "source": source,
        "ratings": ratings,
        "meta": meta,
        "out": out,
        "subsets": [s for s in subsets.split(",") if s.strip()] if subsets else None,
        "mode": "strict" if strict else None,
        "columns": _column_map(columns) if columns else None,
        "min_users": min_users,
    }
    cfg = resolve(PrepareConfig, toml=config, overrides=set_, flags=flags)
    check_out_dir(cfg.out)
    card = prepare(cfg)
    Console().print(
        f"[green]prepared[/green] {card['n_users']:,} users, {card['n_items']:,} items, "
        f"{card['n_interactions']:,} interactions ({sum(card['dropped'].values()):,} rows dropped) "
        f"in {card['wall_time_s']:.1f}s → {cfg.out}"
    )


def _column_map(text: str) -> dict[str, str]:
    """`user=customer,item=sku` → {"user": "customer", "item": "sku"}."""
    from scalerec.errors import UserError

    out = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise UserError(f"--columns: {pair!r} is not like ours=yours (e.g. user=customer_id)")
        out[ours.strip()] = theirs.strip()
    return out


@data_app.command("card")
def card_cmd(
    dataset: Path = typer.Argument(..., help="A prepared dataset dir (or subsets/<label>)."),
) -> None:
    """Print the dataset card (counts after every step, dropped rows by reason, sources)."""
    from rich.console import Console
    from rich.markdown import Markdown

    from scalerec.data import read_card, render_markdown

    Console().print(Markdown(render_markdown(read_card(dataset))))


def register(app: typer.Typer) -> None:
    """Attach this stage's commands to the main app."""
    app.add_typer(data_app, name="data")
