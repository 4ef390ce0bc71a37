"""The transfer table: pretrain once, fine-tune with every strategy, against scratch and ID-SASRec.

Two settings (issue 9):
- `real`: target Amazon Beauty (S3Rec split, titles) or Amazon 2018 Games (titles); pretraining on
  the other real corpora in ../shared/data (Games + Magazine + Gift Cards for Beauty; Beauty +
  Magazine + Gift Cards for Games). The corpora are prepared with `scalerec.data.build.prepare.prepare` and
  concatenated with disjoint ids.
- `synthetic`: pretraining on a large synthetic corpus (topic-structured histories from
  `scalerec.data.ingest.synthetic.generate`) whose titles are written with the *target's* title words, so
  the vocabularies overlap while no item is shared.

Each run writes `<out>/<setting>-<target>/{data,tokens,pretrain,ft/<strategy>}` and the report
`ft/transfer_report.md`; it prints one JSON line per strategy with `ratio_vs_scratch` (NDCG@10 of
the strategy / NDCG@10 of scratch, both measured in this run) and a final JSON line with the verdicts.

    python benchmarks/transfer.py --setting real --target beauty --device cuda --size xs
    python benchmarks/transfer.py --setting synthetic --target games --device cuda --synthetic-interactions 5M
    python benchmarks/transfer.py --cpu-small          # tiny everything, a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
STRATEGIES = ("zero-shot", "scratch", "id-scratch", "full", "freeze-transformer", "only-embeddings",
              "progressive", "ewc")


def corpus_specs(shared: Path) -> dict[str, dict[str, Any]]:
    """PrepareConfig fields of each real corpus (files as described in each SOURCE.md)."""
    mag, gift = shared / "amazon2018_magazine_subscriptions", shared / "amazon2018_gift_cards"
    return {
        "beauty": {"source": "s3rec", "ratings": [shared / "amazon_beauty_2014_5core/Beauty.txt"],
                   "meta": [shared / "amazon_beauty_2014_5core/items.tsv.gz"], "min_user_interactions": 5},
        "games": {"source": "recbole", "ratings": [shared / "amazon2018_games_llmrank/Games.test.inter.gz"],
                  "meta": [shared / "amazon2018_games_llmrank/Games.item.gz"], "min_user_interactions": 5},
        "magazine": {"source": "amazon2018", "ratings": [mag / "Magazine_Subscriptions.csv.gz"],
                     "meta": [mag / "meta_Magazine_Subscriptions.json.gz"], "min_user_interactions": 3},
        "gift_cards": {"source": "amazon2018", "ratings": [gift / "Gift_Cards_5.json.gz"],
                       "meta": [gift / "meta_Gift_Cards.json.gz"], "min_user_interactions": 3},
    }


PRETRAIN_ON = {"beauty": ("games", "magazine", "gift_cards"), "games": ("beauty", "magazine", "gift_cards")}


def prepare_corpus(name: str, out: Path, shared: Path, subset: str | None) -> Path:
    """Prepare one real corpus (cached); returns its dataset dir (or the subset's)."""
    from scalerec.data.build.prepare import PrepareConfig, prepare

    dest = out / name
    if not (dest / "card.json").is_file():
        spec = corpus_specs(shared)[name]
        prepare(PrepareConfig(out=dest, name=name, subsets=[subset] if subset else [], **spec))
    sub = dest / "subsets" / subset if subset else dest
    return sub if sub.is_dir() else dest


def merge_datasets(parts: list[Path], dest: Path) -> Path:
    """Concatenate dataset dirs with disjoint user and item ids (a multi-domain pretraining corpus)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if (dest / "card.json").is_file():
        return dest
    inters, items, u_off, i_off = [], [], 0, 0
    for part in parts:
        it = pq.read_table(part / "interactions.parquet")
        im = pq.read_table(part / "items.parquet")
        im = im.select(["item_id", "item_key", "title", "brand", "categories"])
        it = it.set_column(it.schema.get_field_index("user_id"), "user_id",
                           pc.add(it["user_id"], pa.scalar(u_off, pa.int32())))
        it = it.set_column(it.schema.get_field_index("item_id"), "item_id",
                           pc.add(it["item_id"], pa.scalar(i_off, pa.int32())))
        im = im.set_column(0, "item_id", pc.add(im["item_id"], pa.scalar(i_off, pa.int32())))
        inters.append(it.select(["user_id", "item_id", "timestamp", "rating"]))
        items.append(im.cast(items[0].schema) if items else im)
        u_off = int(pc.max(it["user_id"]).as_py())
        i_off += im.num_rows
    dest.mkdir(parents=True, exist_ok=True)
    inter = pa.concat_tables(inters)
    pq.write_table(inter, dest / "interactions.parquet")
    pq.write_table(pa.concat_tables(items), dest / "items.parquet")
    card = {"format_version": 1, "n_users": u_off, "n_items": i_off, "n_interactions": inter.num_rows,
            "source": {"merged": [str(p) for p in parts]}, "steps": [], "dropped": {}}
    (dest / "card.json").write_text(json.dumps(card, indent=2))
    return dest


def synthetic_corpus(target: Path, dest: Path, n_interactions: int, seed: int) -> Path:
    """Synthetic histories (topic structure from `scalerec.data.ingest.synthetic`) whose titles use the
    target's title words: each topic draws its words from a few random target titles."""
    import pyarrow.parquet as pq

    from scalerec.data.build.prepare import PrepareConfig, prepare
    from scalerec.data.ingest.synthetic import generate
    from scalerec.data.ingest.synthetic_formats import WRITERS
    from scalerec.text import normalize_text

    if (dest / "card.json").is_file():
        return dest
    titles = [t for t in pq.read_table(target / "items.parquet")["title"].to_pylist() if t]
    rng = np.random.default_rng(seed)
    world = generate(n_interactions, seed=seed)
    n_topics = int(world.item_topic.max()) + 1
    pools = []
    for _ in range(n_topics):
        words = [w for t in rng.choice(titles, 3) for w in normalize_text(str(t)).split() if len(w) > 1]
        pools.append(words or ["item"])
    new_titles = np.array([" ".join(rng.choice(pools[t], 4)) for t in world.item_topic], dtype=object)
    world = dataclasses.replace(world, title=new_titles)
    raw = dest.parent / f"{dest.name}_raw"
    raw.mkdir(parents=True, exist_ok=True)
    paths = WRITERS["amazon2018"](world, raw, np.random.default_rng(seed + 1), 0.0, True)
    prepare(PrepareConfig(source="amazon2018", ratings=[paths["ratings"]], meta=[paths["meta"]], out=dest,
                          name=dest.name, min_user_interactions=3))
    shutil.rmtree(raw, ignore_errors=True)
    return dest


def vocab_overlap(source_items: Path, target_items: Path) -> float:
    """Fraction of the target's title word occurrences that also occur in the source's titles."""
    import pyarrow.parquet as pq

    from scalerec.text import normalize_text

    def words(p: Path) -> Counter:
        titles = pq.read_table(p)["title"].to_pylist()
        return Counter(w for t in titles if t for w in normalize_text(t).split())

    src, tgt = words(source_items), words(target_items)
    return sum(c for w, c in tgt.items() if w in src) / max(1, sum(tgt.values()))


def pretrain(corpus: Path, tokens: Path, out: Path, args: argparse.Namespace) -> Path:
    """Token table on the pretraining corpus, then `scalerec.train.train` (cached by final.json)."""
    from scalerec.text import build_token_table
    from scalerec.train import train
    from scalerec.train.config import resolve_run_config

    if not (tokens / "token_table.json").is_file():
        build_token_table(corpus, tokens, vocab_size=args.vocab_size)
    run = out / "pretrain"
    if (run / "final.json").is_file():
        return run
    sets = [f"data.dataset={corpus}", f"data.tokens={tokens}", f"data.max_len={args.max_len}",
            f"model.max_len={args.max_len}", f"run.out={out}", "run.name=pretrain", "run.tracking_uri=off",
            f"run.device={'cuda' if args.device.startswith('cuda') else 'cpu'}", "run.progress=false",
            f"train.epochs={args.pretrain_epochs}", f"train.negatives={args.negatives}",
            f"train.batch_size={args.batch_size}", f"train.lr={args.pretrain_lr}", f"run.seed={args.seed}"]
    if args.eval_users:
        sets.append(f"eval.max_users={args.eval_users}")
    train(resolve_run_config(overrides=sets + list(args.pretrain_set), size=args.size), overwrite=True)
    return run


def finetune_all(run: Path, target: Path, out: Path, args: argparse.Namespace) -> Path:
    """Every strategy on the target (cached per strategy by transfer.json); returns the report path."""
    from scalerec.config import load
    from scalerec.transfer.finetune import FinetuneConfig, finetune
    from scalerec.transfer.report import transfer_report

    for strategy in args.strategies:
        dest = out / "ft" / strategy
        if (dest / "transfer.json").is_file():
            continue
        sets = [f"pretrained={run}", f"data={target}", f"out={dest}", f"strategy={strategy}",
                f"epochs={args.epochs}", f"stage_epochs={args.stage_epochs}", f"batch_size={args.batch_size}",
                f"n_negatives={args.negatives}", f"device={args.device}", f"ewc_batches={args.ewc_batches}",
                f"valid_max_users={args.eval_users or 5000}", f"seed={args.seed}",
                f"pretrained_root={out}"]  # MLflow store <out>/mlruns, beside the pretrained run
        finetune(load(FinetuneConfig, overrides=sets + list(args.ft_set)))
    return transfer_report(out / "ft")


def emit(report_dir: Path, setting: str, target: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Print one JSON line per strategy (ratio vs scratch of this run) and one with the verdicts."""
    data = json.loads((report_dir / "transfer_report.json").read_text())
    scratch = next((r["overall"].get("ndcg@10") for r in data["rows"] if r["strategy"] == "scratch"), None)
    for r in data["rows"]:
        ndcg = r["overall"].get("ndcg@10")
        cold = (r.get("cold") or {}).get("ndcg@10")
        after = (r.get("source_after") or {}).get("ndcg@10")
        line = {"bench": "transfer", "setting": setting, "target": target, "strategy": r["strategy"],
                "ndcg@10": ndcg, "hr@10": r["overall"].get("hr@10"), "mrr": r["overall"].get("mrr"),
                "cold_ndcg@10": cold, "source_ndcg@10_after": after, "flops": r["flops"],
                "wall_time_s": r["wall_time_s"],
                "ratio_vs_scratch": ndcg / scratch if ndcg is not None and scratch else None}
        print(json.dumps(line), flush=True)
    verdict = {"bench": "transfer", "setting": setting, "target": target, **extra,
               "comparisons": data["comparisons"], "most_popular": data["most_popular"]["overall"],
               "report": str(report_dir / "transfer_report.md")}
    print(json.dumps(verdict), flush=True)
    return verdict


def run_setting(setting: str, target: str, args: argparse.Namespace) -> dict[str, Any]:
    """Prepare data, pretrain and fine-tune every strategy for one (setting, target) cell."""
    root = Path(args.out) / f"{setting}-{target}"
    data = Path(args.out) / "data"
    tgt = prepare_corpus(target, data, Path(args.shared), args.target_subset)
    if setting == "real":
        parts = [prepare_corpus(n, data, Path(args.shared), args.pretrain_subset)
                 for n in PRETRAIN_ON[target]]
        corpus = merge_datasets(parts, root / "pretrain_data")
    else:
        n_synth = parse_count(args.synthetic_interactions)
        corpus = synthetic_corpus(tgt, root / "pretrain_data", n_synth, args.seed)
    extra = {"vocab_overlap": vocab_overlap(corpus / "items.parquet", tgt / "items.parquet")}
    run = pretrain(corpus, root / "tokens", root, args)
    report = finetune_all(run, tgt, root, args)
    if args.results:
        Path(args.results).mkdir(parents=True, exist_ok=True)
        shutil.copy(report, Path(args.results) / f"transfer_{setting}_{target}.md")
    return emit(report.parent, setting, target, extra)


def parse_count(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KM]?)", text.upper())
    if not m:
        raise SystemExit(f"bad count {text!r} (like 200K or 5M)")
    return int(float(m.group(1)) * {"": 1, "K": 1_000, "M": 1_000_000}[m.group(2)])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", choices=("real", "synthetic", "both"), default="both")
    p.add_argument("--target", choices=("beauty", "games", "both"), default="both")
    p.add_argument("--out", default="runs/transfer_bench")
    p.add_argument("--shared", default=str(SHARED), help="Real datasets root (../shared/data).")
    p.add_argument("--results", default=None, help="Copy each report here (e.g. docs/results).")
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", default="xs", help="Model ladder entry (scalerec.model.sizes.SIZES).")
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--vocab-size", type=int, default=30000)
    p.add_argument("--pretrain-epochs", type=float, default=20.0)
    p.add_argument("--pretrain-lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--stage-epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--negatives", type=int, default=512)
    p.add_argument("--ewc-batches", type=int, default=300)
    p.add_argument("--eval-users", type=int, default=0, help="Validation users cap (0 = library default).")
    p.add_argument("--target-subset", default=None, help="Use this nested subset of the target (e.g. 20K).")
    p.add_argument("--pretrain-subset", default=None, help="Use this subset of each real pretraining corpus.")
    p.add_argument("--synthetic-interactions", default="2M")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--pretrain-set", action="append", default=[], help="Extra RunConfig --set (pretraining).")
    p.add_argument("--ft-set", action="append", default=[], help="Extra FinetuneConfig --set.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu-small", action="store_true", help="Tiny sizes for a CPU smoke run.")
    args = p.parse_args(argv)
    if args.cpu_small:
        args.size, args.max_len, args.vocab_size = "tiny", 20, 2000
        args.pretrain_epochs, args.epochs, args.stage_epochs = 1.0, 2, 1
        args.negatives, args.ewc_batches, args.eval_users = 64, 5, 500
        args.target_subset, args.pretrain_subset = args.target_subset or "20K", args.pretrain_subset or "30K"
        args.synthetic_interactions = "50K"
    args.strategies = [s for s in args.strategies.split(",") if s]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = ("real", "synthetic") if args.setting == "both" else (args.setting,)
    targets = ("beauty", "games") if args.target == "both" else (args.target,)
    for setting in settings:
        for target in targets:
            run_setting(setting, target, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
