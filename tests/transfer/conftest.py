"""A tiny two-domain world for transfer tests: a source and a target catalog whose titles share
words (so a text model can transfer) but no items, and a pretrained run on the source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

TOPICS = [
    ["red", "apple", "cherry", "ruby", "crimson", "berry"],
    ["blue", "ocean", "wave", "navy", "sky", "sea"],
    ["green", "leaf", "forest", "moss", "pine", "fern"],
    ["gold", "sun", "amber", "honey", "lemon", "yellow"],
]


def write_domain(root: Path, seed: int, n_items: int, n_users: int, cold_items: int = 0) -> Path:
    """Dataset dir with items of 4 topics and users who stay within one topic.

    The last `cold_items` items appear only as the final (test) item of some users, so they are
    never in the training interactions."""
    rng = np.random.default_rng(seed)
    topic = np.arange(n_items) % len(TOPICS)
    titles = [" ".join(rng.choice(TOPICS[t], 3, replace=False)) + f" item{seed}x{i}"
              for i, t in enumerate(topic)]
    warm = n_items - cold_items
    users, items = [], []
    for u in range(n_users):
        t = u % len(TOPICS)
        pool = [i for i in range(warm) if topic[i] == t]
        seq = list(rng.choice(pool, int(rng.integers(5, 9))))
        if cold_items and u % 3 == 0:
            cold_pool = [i for i in range(warm, n_items) if topic[i] == t]
            if cold_pool:
                seq.append(int(rng.choice(cold_pool)))
        users += [u + 1] * len(seq)
        items += [int(i) + 1 for i in seq]
    root.mkdir(parents=True, exist_ok=True)
    inter = pa.table({
        "user_id": pa.array(users, pa.int32()), "item_id": pa.array(items, pa.int32()),
        "timestamp": pa.array(np.arange(len(users)), pa.int64()),
        "rating": pa.array([None] * len(users), pa.float32()),
    })
    pq.write_table(inter, root / "interactions.parquet")
    item_tbl = pa.table({
        "item_id": pa.array(np.arange(1, n_items + 1), pa.int32()),
        "item_key": [f"k{i}" for i in range(n_items)], "title": titles,
        "brand": [TOPICS[t][0] for t in topic], "categories": [[TOPICS[t][1]] for t in topic],
    })
    pq.write_table(item_tbl, root / "items.parquet")
    card = {"format_version": 1, "n_users": n_users, "n_items": n_items, "n_interactions": len(users),
            "source": {"synthetic": seed}, "steps": [], "dropped": {}}
    (root / "card.json").write_text(json.dumps(card))
    return root


def pretrain_run(
    run_dir: Path, dataset: Path, tokens: Path, item_encoder: str = "text", epochs: int = 3
) -> Path:
    """A complete run dir (final.json, meta.json, weights) trained briefly on `dataset`."""
    from scalerec.model import ModelConfig, SequentialRecommender
    from scalerec.rundir import model_meta, save_weights
    from scalerec.train.negatives import popularity_sampler
    from scalerec.transfer.finetune import load_domain
    from scalerec.transfer.loop import LoopSettings, run_stages
    from scalerec.transfer.strategies import PlanSettings, make_plan

    dom = load_domain(dataset, tokens if item_encoder != "id" else None)
    vocab = json.loads((tokens / "token_table.json").read_text())["vocab_size"]
    mcfg = ModelConfig(item_encoder=item_encoder, vocab_size=vocab, n_items=dom.n_items, token_dim=16,
                       d_model=16, n_layers=2, n_heads=2, d_ffn=32, max_len=12, dropout=0.0,
                       field_max_len={"title": 8, "brand": 2, "categories": 2})
    torch.manual_seed(0)
    model = SequentialRecommender(mcfg)
    model.set_item_table(dom.tables)
    from scalerec.train.padded import TrainBatches

    batches = TrainBatches(dom.split.train, mcfg.max_len, 16, seed=0)
    plan = make_plan("full", model, PlanSettings(epochs=epochs, lr=1e-2))
    run_stages(model, plan.stages, batches, popularity_sampler(dom.popularity), lambda m: 0.0,
               LoopSettings(32, 0.0, "constant", 0.0, 0, "cpu", 0))
    run_dir.mkdir(parents=True)
    save_weights(run_dir, model, model_meta(mcfg, tokens if item_encoder != "id" else None, dataset, 1))
    (run_dir / "final.json").write_text(json.dumps({"format_version": 1, "run_id": run_dir.name}))
    return run_dir



@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from scalerec.text import build_token_table

    torch.set_num_threads(1)

    root = tmp_path_factory.mktemp("transfer_world")
    source = write_domain(root / "source", seed=1, n_items=48, n_users=80)
    target = write_domain(root / "target", seed=2, n_items=32, n_users=48, cold_items=8)
    build_token_table(source, root / "source_tokens", vocab_size=120, min_frequency=1,
                      max_lens={"title": 8, "brand": 2, "categories": 2})
    run = pretrain_run(root / "pretrained", source, root / "source_tokens")
    return {"root": root, "source": source, "target": target, "tokens": root / "source_tokens", "run": run}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every transfer test trains: one intra-op thread (the shared fixture in tests/conftest.py)."""
    yield
