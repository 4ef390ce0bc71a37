"""Write a known-floor world (`scalerec.data.ingest.world`) as a dataset dir a sweep can train on.

The dir holds what must be fixed across every run of a sweep: the catalog (`items.parquet`, with
titles), the evaluation users (`interactions.parquet`: leave-one-out gives their validation and
test targets, both at rule positions, so their floor is `World.bayes_floor()`), the token table
(`tokens/`, one word-level token per title word: the text encoder applies without a BPE pass over
a million titles) and `world.json` (the world's parameters and floors). Training users are never
written: `scalerec.train.world_stream` generates them on the device.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from scalerec.data.ingest import world as W
from scalerec.io import atomic_dir, read_json
from scalerec.text.item_tokens import FORMAT_VERSION, ItemTokens, save_item_tokens


def world_manifest(world: W.World, seqs: np.ndarray) -> dict[str, Any]:
    """`seqs`: the evaluation users (`eval_sequences`), generated once by the caller for both the floor
    and the tables."""
    valid, test = eval_target_losses(world, seqs)
    return {
        "format_version": W.FORMAT_VERSION,
        "world": dataclasses.asdict(world.cfg),
        "eval_users": len(seqs),
        "bayes_floor": world.bayes_floor(),
        "eval_floor": {"valid": float(valid.mean()), "test": float(test.mean())},
        "train_floor": world.train_floor(),
        "n_items": world.cfg.n_items,
    }


def world_from_spec(fields: dict[str, Any]) -> tuple[W.WorldConfig, int]:
    """A sweep spec's `[world]` table: the world's parameters and its number of evaluation users."""
    fields = dict(fields)
    eval_users = int(fields.pop("eval_users", 10_000))
    return W.WorldConfig(**fields), eval_users


def eval_sequences(world: W.World, eval_users: int) -> np.ndarray:
    """int64 [eval_users, length]: the evaluation users every run of a sweep is scored on. One place, so
    whatever studies them (e.g. their own Bayes loss against the analytical floor) sees the written users."""
    return world.sequences(np.arange(eval_users), world.cfg.seed, tag=W.EVAL_USER)


def eval_target_losses(world: W.World, seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The optimal predictor's loss (nats) per evaluation user at the validation and at the test item (the
    last two: leave-one-out). Their means are the manifest's `eval_floor`. Why beside the analytical floor:
    every run is scored on these same users, so their sampling error is an offset common to all runs
    (world_v6's 5,000 users: +0.18% at validation), which moves the E a fit can recover; it is not seed
    noise, and it is known exactly."""
    lp = world.bayes_logprob(seqs)  # targets at positions 1 … length-1
    return -lp[:, -2], -lp[:, -1]


def _write_tables(world: W.World, tmp: Path, seqs: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = world.cfg
    eval_users = len(seqs)
    users = np.repeat(np.arange(1, eval_users + 1, dtype=np.int32), c.length)
    pq.write_table(
        pa.table(
            {
                "user_id": users,
                "item_id": seqs.ravel().astype(np.int32),
                "timestamp": np.tile(np.arange(c.length, dtype=np.int64), eval_users),
                "rating": pa.nulls(len(users), pa.float32()),
            }
        ),
        tmp / "interactions.parquet",
    )
    ids = np.arange(1, c.n_items + 1, dtype=np.int32)
    pq.write_table(
        pa.table(
            {
                "item_id": ids,
                "item_key": pa.array([f"w{i}" for i in ids]),
                "title": pa.array(world.titles(ids)),
                "brand": pa.nulls(len(ids), pa.string()),
                "categories": pa.array([[] for _ in ids], pa.list_(pa.string())),
            }
        ),
        tmp / "items.parquet",
    )
    users_ids = np.arange(1, eval_users + 1, dtype=np.int32)
    pq.write_table(
        pa.table({"user_id": users_ids, "user_key": pa.array([f"eval{u}" for u in users_ids])}),
        tmp / "users.parquet",
    )


def _write_tokens(world: W.World, out: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = world.vocabulary()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    rows = world.title_token_ids(np.arange(1, world.cfg.n_items + 1))
    table = np.vstack([np.zeros((1, rows.shape[1]), np.int32), rows])
    lengths = np.full(len(table), rows.shape[1], np.int32)
    lengths[0] = 0
    out.mkdir()
    tok.save(str(out / "tokenizer.json"))
    save_item_tokens(ItemTokens({"title": table}, {"title": lengths}, len(vocab)), out / "item_tokens.npz")
    manifest = {
        "format_version": FORMAT_VERSION,
        "vocab_size": len(vocab),
        "fields": {"title": rows.shape[1]},
        "pad_id": 0,
        "unk_id": 1,
        "n_items": world.cfg.n_items,
        "dataset": "world",
        "word_level": True,
    }
    (out / "token_table.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def write_world(cfg: W.WorldConfig, out: str | Path, eval_users: int = 10_000) -> dict[str, Any]:
    """Write the world dataset dir `out` (atomically); an identical existing one is kept as is."""
    out = Path(out)
    world = W.World.build(cfg)
    seqs = eval_sequences(world, eval_users)
    manifest = world_manifest(world, seqs)
    if (out / W.WORLD_FILE).is_file() and read_json(out / W.WORLD_FILE) == manifest:
        return manifest
    with atomic_dir(out) as tmp:
        _write_tables(world, tmp, seqs)
        _write_tokens(world, tmp / "tokens")
        card = {
            "n_users": eval_users,
            "n_items": cfg.n_items,
            "n_interactions": eval_users * cfg.length,
            "source": "known-floor world (scalerec.data.ingest.world)",
            "bayes_floor": manifest["bayes_floor"],
        }
        (tmp / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        (tmp / W.WORLD_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
