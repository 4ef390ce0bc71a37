"""Raw dumps → a clean dataset dir (Parquet + card), in bounded memory and without silent loss.

Pipeline (each step counted in the card): parse (strict or lenient; a file that is mostly not
the declared format stops the run) → string keys to 64-bit hashes (`rows.py`) → dedupe
(user, item, timestamp) → join metadata, drop items without metadata or usable title → exclude
users of named downstream datasets → min interactions per user and optional iterative k-core →
dense ids (users in seeded-hash order, so nested subsets are prefixes) → sort by (user, time,
arrival) → write → nested subsets (`steps.py`, `subsets.py`). Strings are touched once, at
encoding; every later step works on int columns, which is what keeps a 23M-row dump in a few GB.

Above `shard_above_rows` parsed rows the rows go to disk instead, partitioned by the seeded user
hash, and every per-user step runs one shard at a time (`shards.py`); below it everything stays
in memory (`memory.py`). Both paths write the same files and the same card.

The output is built under a temporary name and renamed at the end (`scalerec.io.output_dir`):
`--out` must be new, empty or a previous `data prepare` output (then it is replaced, once the new
dataset is complete); it may not hold an input; a run that keeps fewer than `min_users` users
stops with exit 2 and leaves `--out` as it was.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from scalerec.config import to_dict
from scalerec.data.build.card import FORMAT_VERSION, source_files, write_card
from scalerec.data.build.config import DomainSource, PrepareConfig
from scalerec.data.build.memory import prepare_in_memory
from scalerec.data.build.rows import Staged, check_readable, parsed_blocks, user_key_map
from scalerec.data.build.shards import ShardWriter, prepare_sharded
from scalerec.data.build.subsets import excluded_keys
from scalerec.data.ingest.meta import DomainMeta, MetaTable, read_domain_meta, read_meta
from scalerec.data.ingest.parse import ParseLog
from scalerec.data.ingest.sources import SOURCES
from scalerec.errors import UserError
from scalerec.io import output_dir

STAGE = "data prepare"
"""The marker name of a dataset dir (`scalerec.io.MARKER`)."""


def _parse(cfg: PrepareConfig, log: ParseLog, tmp: Path) -> Staged | ShardWriter:
    """All interaction files → rows in memory, or in user-hash shards once `shard_above_rows` is crossed."""
    staged = Staged()
    blocks = parsed_blocks(cfg, log)
    for block in blocks:
        staged.add(block)
        if staged.n > cfg.shard_above_rows:
            sharded = ShardWriter(tmp / "_shards", cfg.shards, cfg.seed, user_key_map(cfg))
            sharded.take(staged)
            del staged  # its user keys are in the shards now
            for rest in blocks:
                sharded.add(rest)
            sharded.items.compact()
            return sharded
    return staged


def _load_meta(cfg: PrepareConfig, log: ParseLog, spill: Path) -> MetaTable | None:
    """The metadata as a `MetaTable` (text spilled under `spill`), each item file judged readable."""
    domains = cfg.inputs()
    for dom in domains:
        if not dom.meta and cfg.require_metadata and SOURCES[dom.source].needs_meta:
            who = f"domain {dom.name!r}" if dom.name else "--source " + dom.source
            raise UserError(
                f"no item table (--meta) for {who}: pass the metadata file, or set require_metadata=false"
            )
    with_meta = [d for d in domains if d.meta]
    if not with_meta:
        return None
    if not cfg.domains:
        meta = read_meta(cfg.source, cfg.meta, log, spill, columns=cfg.columns)
    else:
        meta = read_domain_meta(
            [DomainMeta(d.name, d.source, d.meta, d.columns) for d in with_meta], log, spill
        )
    for dom in with_meta:
        _check_meta(dom, meta, log, cfg.max_bad_fraction)
    return meta


def _check_meta(dom: DomainSource, meta: MetaTable, log: ParseLog, max_bad: float) -> None:
    """An item file that is mostly unreadable (or gave no item at all) is the wrong file or format."""
    for path in dom.meta:
        lines = log.lines.get(str(path))
        bad = sum(log.by_file.get(str(path), {}).values())
        n_ok = (lines - bad) if lines else meta.counts["unique_items"]
        check_readable(path, f"{dom.source} item table", max(n_ok, 0), log, max_bad)


def _new_card(cfg: PrepareConfig, log: ParseLog, meta: MetaTable | None) -> dict[str, Any]:
    card: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": cfg.name or cfg.out.name,
        "n_users": 0,
        "n_items": 0,
        "n_interactions": 0,
        "source": {
            "format": "pooled" if cfg.domains else cfg.source,
            "files": source_files([p for d in cfg.inputs() for p in [*d.ratings, *d.meta]]),
            "lines_read": log.lines,
            "rows_parsed": 0,
        },
        "params": to_dict(cfg),
        "steps": [],
        "dropped": {"malformed": log.total},
        "metadata": meta.counts if meta is not None else {},
        "parse": {"mode": cfg.mode, "counts": log.counts, "examples": log.examples},
        "split": "leave-one-out at load time (last item test, second-last valid)",
    }
    if cfg.domains:
        card["source"]["domains"] = {d.name: d.source for d in cfg.domains}
    return card


def _check_kept(cfg: PrepareConfig, card: dict[str, Any]) -> None:
    """Fewer users than `min_users` is an error naming the steps that dropped the most rows."""
    if card["n_users"] >= cfg.min_users:
        return
    reasons = {**card["parse"]["counts"], **{k: v for k, v in card["dropped"].items() if k != "malformed"}}
    top = sorted(((v, k) for k, v in reasons.items() if v), reverse=True)[:3]
    why = ", ".join(f"{k}: {v:,} rows" for v, k in top) or "no rows were dropped: the input is too small"
    raise UserError(
        f"prepare kept {card['n_users']:,} users, fewer than min_users={cfg.min_users} "
        f"(top drop reasons: {why}); nothing was written to {cfg.out}"
    )


def prepare(cfg: PrepareConfig) -> dict[str, Any]:
    """Run the pipeline of the module docstring; returns the card (also written to `cfg.out`)."""
    if not any(d.ratings for d in cfg.inputs()):
        raise UserError("no interaction file given (--ratings)")
    for p in cfg.input_files():
        if not Path(p).exists() or (p not in cfg.exclude_users and not Path(p).is_file()):
            raise UserError(f"input file not found: {p}")
    t0 = time.perf_counter()
    log = ParseLog(cfg.mode)
    with output_dir(cfg.out, STAGE, cfg.input_files(), overwrite=True, legacy_marker="card.json") as tmp:
        rows = _parse(cfg, log, tmp)
        card = _new_card(cfg, log, None)
        meta = _load_meta(cfg, log, tmp / "_meta")
        card["metadata"] = meta.counts if meta is not None else {}
        excluded = excluded_keys(cfg.exclude_users) if cfg.exclude_users else None
        if isinstance(rows, ShardWriter):
            prepare_sharded(cfg, rows, meta, excluded, tmp, card)
            shutil.rmtree(tmp / "_shards", ignore_errors=True)
        else:
            prepare_in_memory(cfg, rows, meta, excluded, tmp, card)
        shutil.rmtree(tmp / "_meta", ignore_errors=True)
        _check_kept(cfg, card)
        card["wall_time_s"] = round(time.perf_counter() - t0, 3)
        card["dataset_hash"] = card.pop("dataset_hash")
        write_card(tmp, card)
    return card
