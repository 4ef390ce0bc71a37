"""The built-in demo: the whole chain on synthetic data, in minutes on a laptop.

A new user runs one command and sees every stage do real work: a synthetic Amazon-2018-format dump
is generated (no download), prepared into a dataset dir with nested subsets, tokenized, two model
sizes are trained and evaluated by full ranking against most-popular, a small scaling sweep is
fitted and reported, the pretrained model is fine-tuned to a second domain, and a recommendation is
served from a run. Each step calls the same public function as its CLI command, so the demo is
also the integration test of the package (tests/test_demo.py runs it at a tiny size).
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from scalerec.errors import UserError
from scalerec.io import write_json


@dataclass
class DemoConfig:
    """Sizes of the demo; the defaults finish in well under 10 minutes on 2 CPU cores."""

    out: Path = Path("scalerec-demo")
    """Folder for everything the demo writes."""
    interactions: int = 120_000
    """Synthetic interactions before filtering (pretraining domain)."""
    target_interactions: int = 30_000
    """Synthetic interactions of the second domain used for fine-tuning."""
    sizes: list[str] = field(default_factory=lambda: ["tiny", "xs"])
    """Two model sizes from the ladder to train and compare."""
    epochs: float = 6.0
    """Training epochs of the two main runs."""
    subsets: list[str] = field(default_factory=lambda: ["10K", "20K", "40K", "80K"])
    """Nested data subsets of the sweep."""
    sweep: bool = True
    """Run the small scaling sweep, fit and report."""
    finetune: bool = True
    """Fine-tune the pretrained model to the second domain."""
    seed: int = 0
    """Seed of data, model and sampling."""
    device: str = "auto"
    """auto, cpu or cuda."""
    progress: bool = True
    """Show progress bars."""


@dataclass
class DemoResult:
    """What the demo wrote and the headline numbers it measured."""

    paths: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    fit_lines: list[str] = field(default_factory=list)
    """What `scalerec fit` says of the sweep's valid-loss alpha_N (value with CI, or why not identified)."""


@contextlib.contextmanager
def _timed(result: DemoResult, name: str, console: Console) -> Iterator[None]:
    """Print a section rule and record the section's wall time in `result.seconds`."""
    console.rule(f"[bold]{name}")
    t0 = time.perf_counter()
    yield
    result.seconds[name] = round(time.perf_counter() - t0, 1)


def _prepare(cfg: DemoConfig, out: Path, result: DemoResult) -> tuple[Path, Path, Path]:
    """Synthesize one world, cut it into a pretraining and a target domain (shared vocabulary, no
    shared items), write both in the real Amazon 2018 raw format, prepare and tokenize them."""
    from scalerec.data.build.prepare import PrepareConfig, prepare
    from scalerec.data.ingest.synthetic import generate, split_domains
    from scalerec.data.ingest.synthetic_formats import WRITERS
    from scalerec.text import build_token_table

    # items and users are split with the same share s: the source keeps (1-s)^2 of the world's
    # interactions and the target s^2 (the rest crosses domains and is dropped).
    ratio = (cfg.target_interactions / cfg.interactions) ** 0.5
    share = ratio / (1 + ratio)
    world = generate(int(cfg.interactions / (1 - share) ** 2), seed=cfg.seed)
    source, target = split_domains(world, target_item_share=share, target_user_share=share, seed=cfg.seed)
    dirs = {}
    sweep_subsets = cfg.subsets if cfg.sweep else []
    for name, part, subsets in (("synthetic", source, sweep_subsets), ("target", target, [])):
        (out / "raw" / name).mkdir(parents=True, exist_ok=True)
        raw = WRITERS["amazon2018"](part, out / "raw" / name, np.random.default_rng(cfg.seed), 0.0, True)
        dirs[name] = out / "data" / name
        prepare(PrepareConfig(source="amazon2018", ratings=[raw["ratings"]], meta=[raw["meta"]],
                              out=dirs[name], subsets=list(subsets), seed=cfg.seed))
    tokens = out / "tokens" / "synthetic"
    build_token_table(dirs["synthetic"], tokens, vocab_size=8000)
    for label in _subset_labels(dirs["synthetic"], sweep_subsets):
        # subsets renumber items: one table each, with the same tokenizer
        build_token_table(dirs["synthetic"] / "subsets" / label, out / "tokens" / label,
                          tokenizer_path=tokens / "tokenizer.json")
    result.paths.update(raw=out / "raw", dataset=dirs["synthetic"], card=dirs["synthetic"] / "CARD.md",
                        tokens=tokens, target_dataset=dirs["target"])
    return dirs["synthetic"], tokens, dirs["target"]


def run_config(
    cfg: DemoConfig, dataset: Path, tokens: Path, size: str, runs: Path, name: str, epochs: float
) -> Any:
    """The demo's training config: the default recipe, sized for a CPU laptop."""
    from scalerec.train.config import resolve_run_config

    return resolve_run_config(
        size=size,
        overrides=[
            f'data.dataset="{dataset}"',
            f'data.tokens="{tokens}"',
            f"train.epochs={epochs}",
            "train.negatives=256",
            "train.batch_size=128",
            "train.lr=3e-3",
            "eval.patience=0",
            f'run.out="{runs}"',
            f'run.name="{name}"',
            f"run.seed={cfg.seed}",
            f'run.device="{cfg.device}"',
            f"run.progress={str(cfg.progress).lower()}",
            # quiet runs (tests) skip MLflow; otherwise the trainer's default local store
            *([] if cfg.progress else ['run.tracking_uri="off"']),
        ],
    )


def _train_sizes(cfg: DemoConfig, dataset: Path, tokens: Path, out: Path, result: DemoResult) -> list[Path]:
    from scalerec.eval.evaluate import evaluate_run
    from scalerec.train import train

    run_dirs = []
    for size in cfg.sizes:
        summary = train(run_config(cfg, dataset, tokens, size, out / "runs", size, cfg.epochs))
        report = evaluate_run(summary.run_dir, split="test", bootstrap=200, device=cfg.device)
        result.metrics[f"model {size}"] = {k: v["mean"] for k, v in report["model"].items()}
        result.metrics["most-popular"] = {k: v["mean"] for k, v in report["most_popular"].items()}
        run_dirs.append(summary.run_dir)
    result.paths["runs"] = out / "runs"
    return run_dirs


def _subset_labels(dataset: Path, wanted: list[str]) -> list[str]:
    """The wanted subsets that `prepare` wrote (a subset larger than the dataset is not written)."""
    return [label for label in wanted if (dataset / "subsets" / label).is_dir()]


def _sweep(cfg: DemoConfig, out: Path, result: DemoResult, console: Console) -> None:
    """A small scaling sweep over the nested subsets, its fits and its HTML report."""
    from scalerec.scaling.fits import fit, summary_lines
    from scalerec.scaling.report import report
    from scalerec.scaling.spec import load_spec
    from scalerec.scaling.sweep import run_sweep

    labels = _subset_labels(out / "data" / "synthetic", cfg.subsets)
    if len(labels) < 2:
        have = ", ".join(labels) or "none of them"
        raise UserError(
            f"the sweep needs at least 2 of the subsets {', '.join(cfg.subsets)}; the prepared data "
            f"holds {have}: raise --interactions or run with --no-sweep"
        )
    spec_path = Path(__file__).with_name("demo_sweep.toml")
    spec = load_spec(spec_path, overrides=[
        f'dataset="{out / "data" / "synthetic"}"', f'tokens="{out / "tokens"}/{{subset}}"',
        f"subsets={labels!r}".replace("'", '"'), f'device="{cfg.device}"', f"seeds=[{cfg.seed}]",
    ])
    sweep_dir = out / "sweep"
    run_sweep(spec, sweep_dir)
    fits = fit(sweep_dir)
    html_path = report(sweep_dir)
    result.paths.update(sweep=sweep_dir, fits=sweep_dir / "fits.json", report=html_path)
    lines = summary_lines({"metrics": {k: v for k, v in fits["metrics"].items() if k == "valid_loss"}})
    result.fit_lines = [ln for ln in lines if ln.startswith(("valid_loss: alpha_N", "valid_loss: no joint"))]
    for line in result.fit_lines:
        console.print(line, markup=False, highlight=False)


def _finetune(cfg: DemoConfig, run_dir: Path, target: Path, out: Path, result: DemoResult) -> None:
    """Transfer the pretrained model to the target domain (items it never saw, same vocabulary):
    zero-shot, training from scratch, and full fine-tuning, all at the same LR and epochs."""
    from scalerec.transfer.finetune import FinetuneConfig, finetune
    from scalerec.transfer.report import transfer_report

    root = out / "finetune"
    for strategy in ("zero-shot", "scratch", "full"):
        summary = finetune(FinetuneConfig(
            pretrained=str(run_dir), data=str(target), out=str(root / strategy), strategy=strategy,
            epochs=4, lr=1e-3, device="cuda" if cfg.device == "cuda" else "cpu", seed=cfg.seed, n_boot=200,
            source_max_users=1000, pretrained_root=str(out / "runs"),  # the demo's MLflow store
            tracking_uri=None if cfg.progress else "off", progress=cfg.progress,
        ))
        overall = (summary.get("test") or {}).get("overall") or {}
        if "ndcg@10" in overall:
            result.metrics[f"target domain: {strategy}"] = {
                k: float(overall[k]) for k in ("ndcg@10", "hr@10", "mrr@10") if k in overall
            }
    pop = ((summary.get("most_popular") or {}).get("overall")) or {}
    if "ndcg@10" in pop:
        result.metrics["target domain: most-popular"] = {
            k: float(pop[k]) for k in ("ndcg@10", "hr@10", "mrr@10") if k in pop
        }
    result.paths["transfer_report"] = transfer_report(root)


def _recommend(run_dir: Path, dataset: Path, result: DemoResult, console: Console) -> None:
    """Top-5 for the history of the first test user, from the trained run (as `scalerec recommend`)."""
    import pyarrow.parquet as pq

    from scalerec.serve.run_encoder import load_recommender

    inter = pq.read_table(dataset / "interactions.parquet", columns=["user_id", "item_id"])
    users = inter["user_id"].to_numpy()
    items = inter["item_id"].to_numpy()
    history_ids = items[users == users[0]][:-1].tolist()
    keys = pq.read_table(dataset / "items.parquet", columns=["item_id", "item_key"])
    key_of = dict(zip(keys["item_id"].to_pylist(), keys["item_key"].to_pylist(), strict=True))
    rec = load_recommender(run_dir)
    answer = rec.recommend([key_of[i] for i in history_ids], k=5)
    console.print(f"history of user 1: {len(history_ids)} items → top-5:")
    for item in answer.items:
        console.print(f"  {item.score:7.3f}  {item.key}  {item.title}")


def _bar_chart(result: DemoResult, path: Path) -> str:
    """NDCG@10 / HR@10 of each model beside most-popular; returns the PNG as base64."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.metrics)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.38
    for j, metric in enumerate(("ndcg@10", "hr@10")):
        values = [result.metrics[n].get(metric, 0.0) for n in names]
        ax.bar([i + j * width for i in range(len(names))], values, width, label=metric.upper())
    ax.set_xticks([i + width / 2 for i in range(len(names))], names, fontsize=7, rotation=20, ha="right")
    ax.set_ylabel("full-ranking metric (test)")
    ax.set_title("Full-ranking test metrics: pretraining domain, then target domain")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _summary(cfg: DemoConfig, out: Path, result: DemoResult) -> None:
    png = _bar_chart(result, out / "summary.png")
    rows = ["| model | NDCG@10 | HR@10 | MRR@10 |", "|---|---|---|---|"]
    for name, m in result.metrics.items():
        rows.append(
            f"| {name} | {m.get('ndcg@10', 0):.4f} | {m.get('hr@10', 0):.4f} | {m.get('mrr@10', 0):.4f} |"
        )
    pop = result.metrics.get("most-popular", {}).get("ndcg@10", 0.0)
    best = max(
        (m.get("ndcg@10", 0.0) for n, m in result.metrics.items() if n.startswith("model")), default=0.0
    )
    ratio = best / pop if pop > 0 else float("inf")
    lines = [
        "# scalerec demo summary",
        "",
        f"Synthetic Amazon-2018-format data, {cfg.interactions:,} raw interactions, seed {cfg.seed}.",
        f"Best model NDCG@10 / most-popular NDCG@10 = **{ratio:.1f}×** (full ranking, test split).",
        "",
        *rows,
        "",
        "![metrics](summary.png)",
        "",
        "## Outputs",
        "",
        *[f"- {k}: `{v}`" for k, v in result.paths.items()],
        "",
        *(["## Scaling fit", "", *[f"- {ln}" for ln in result.fit_lines], ""] if result.fit_lines else []),
        "## Seconds per step",
        "",
        *[f"- {k}: {v}" for k, v in result.seconds.items()],
        "",
    ]
    (out / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    body = "\n".join(
        f"<p>{html.escape(line)}</p>" for line in lines if line and not line.startswith(("|", "!"))
    )
    table = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{m.get('ndcg@10', 0):.4f}</td><td>{m.get('hr@10', 0):.4f}</td>"
        f"<td>{m.get('mrr@10', 0):.4f}</td></tr>"
        for n, m in result.metrics.items()
    )
    (out / "summary.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>scalerec demo</title>"
        f"<body style='font-family:sans-serif;max-width:900px'>{body}"
        f"<table border=1 cellpadding=4><tr><th>model</th><th>NDCG@10</th><th>HR@10</th><th>MRR@10</th></tr>"
        f"{table}</table><img src='data:image/png;base64,{png}'></body>",
        encoding="utf-8",
    )
    write_json(
        out / "summary.json",
        {
            "metrics": result.metrics,
            "ratio_vs_most_popular": ratio,
            "seconds": result.seconds,
            "fit": result.fit_lines,
            "paths": {k: str(v) for k, v in result.paths.items()},
        },
    )
    result.paths.update(summary=out / "summary.md", summary_html=out / "summary.html")


def run_demo(cfg: DemoConfig, console: Console | None = None) -> DemoResult:
    """Run every stage on synthetic data under `cfg.out`; returns the paths and metrics."""
    console = console or Console()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult()
    with _timed(result, "data: synthesize, prepare, tokenize", console):
        dataset, tokens, target = _prepare(cfg, out, result)
    with _timed(result, "train and evaluate two model sizes", console):
        run_dirs = _train_sizes(cfg, dataset, tokens, out, result)
    if cfg.sweep:
        with _timed(result, "scaling sweep, fits and report", console):
            _sweep(cfg, out, result, console)
    if cfg.finetune:
        with _timed(result, "fine-tune to the target domain", console):
            _finetune(cfg, run_dirs[-1], target, out, result)
    with _timed(result, "recommend", console):
        _recommend(run_dirs[-1], dataset, result, console)
    _summary(cfg, out, result)
    return result
