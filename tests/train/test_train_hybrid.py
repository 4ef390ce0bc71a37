"""The hybrid (text + ID) item encoder through training: setup, parameter groups, a run, save → load."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from scalerec.errors import UserError
from scalerec.model import SequentialRecommender
from scalerec.rundir import load_run, model_meta, save_weights
from scalerec.text import load_item_tokens
from scalerec.train import train
from scalerec.train.build import fill_model_config, param_groups
from scalerec.train.config import resolve_run_config
from scalerec.transfer.strategies import param_groups as transfer_groups

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(world, out: Path, name: str, *extra: str):
    data, tokens = world
    base = [f"data.dataset={data}", f"data.tokens={tokens}", "data.max_len=8", f"run.out={out}",
            f"run.name={name}", "run.tracking_uri=off", "run.progress=false", "train.max_steps=8",
            "train.batch_size=16", "train.negatives=16", "train.log_every=2", "eval.every_steps=4",
            "model.dropout=0.1", "train.lr=3e-3", "model.item_encoder=hybrid"]
    return resolve_run_config(overrides=base + list(extra), size="tiny")


def _hybrid_model(world, tmp_path: Path) -> SequentialRecommender:
    cfg = _cfg(world, tmp_path, "m")
    mcfg = fill_model_config(cfg, 40, load_item_tokens(world[1]))
    torch.manual_seed(0)
    model = SequentialRecommender(mcfg)
    with torch.no_grad():
        model.item_encoder.emb.weight[1:] = torch.randn(40, mcfg.d_model)
    model.set_item_table(load_item_tokens(world[1]).torch_tables())
    return model.eval()


def test_fill_model_config_takes_catalog_and_vocab(world, tmp_path) -> None:
    cfg = _cfg(world, tmp_path, "fill")
    mcfg = fill_model_config(cfg, 40, load_item_tokens(world[1]))
    assert (mcfg.item_encoder, mcfg.n_items, mcfg.vocab_size) == ("hybrid", 40, 30)
    assert mcfg.field_max_len == {"title": 4, "brand": 2}
    with pytest.raises(UserError, match="hybrid item encoder needs --tokens"):
        fill_model_config(cfg, 40, None)


def test_hybrid_run_needs_a_token_table(world, tmp_path) -> None:
    data, _ = world
    with pytest.raises(UserError, match="data.tokens is not set: the hybrid"):
        train(_cfg((data, ""), tmp_path, "no_tokens", "train.max_steps=1"))


def test_param_groups_decay_the_id_table_and_transfer_groups_cover_it(world, tmp_path) -> None:
    model = _hybrid_model(world, tmp_path)
    cfg = _cfg(world, tmp_path, "g", "train.weight_decay=0.1", "train.layer_lr_decay=0.5")
    groups = param_groups(model, cfg)
    emb = model.item_encoder.emb.weight
    [owner] = [g for g in groups if any(p is emb for p in g["params"])]
    token = model.item_encoder.token_emb["title"].weight
    [token_owner] = [g for g in groups if any(p is token for p in g["params"])]
    assert owner is token_owner  # same rule as every embedding: a matrix, at the embeddings' LR
    assert owner["weight_decay"] == 0.1 and owner["lr"] == pytest.approx(3e-3 * 0.5**2)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    labels = {n: g for g, names in transfer_groups(model).items() for n in names}
    assert labels["item_encoder.emb.weight"] == "embeddings"
    assert labels["item_encoder.adapter.weight"] == "item_adapter"


def test_save_then_load_gives_identical_scores(world, tmp_path) -> None:
    model = _hybrid_model(world, tmp_path)
    run = tmp_path / "saved"
    run.mkdir()
    save_weights(run, model, model_meta(model.cfg, world[1], world[0], 0))
    (run / "final.json").write_text(json.dumps({"format_version": 1}))
    loaded = load_run(run).model
    hist, lengths = torch.tensor([[3, 4, 5, 0], [10, 11, 12, 13]]), torch.tensor([3, 4])
    with torch.no_grad():
        want = model.last_hidden(hist, lengths) @ model.all_item_vectors().T
        got = loaded.last_hidden(hist, lengths) @ loaded.all_item_vectors().T
    assert torch.equal(got, want)
    assert loaded.cfg.item_encoder == "hybrid" and loaded.item_encoder.id_rows == 40
    assert torch.equal(loaded.item_encoder.emb.weight, model.item_encoder.emb.weight)


def test_hybrid_trains_on_the_tiny_world(world, tmp_path) -> None:
    s = train(_cfg(world, tmp_path, "hybrid"))
    final = s.final
    assert final["steps"] == 8 and final["targets_seen"] > 0
    assert final["params"]["id_embeddings"] == 41 * 32 and final["params"]["token_embeddings"] > 0
    assert final["params"]["non_embedding"] == (
        final["params"]["total"] - final["params"]["id_embeddings"] - final["params"]["token_embeddings"]
    )
    metrics = [final["valid"]["ndcg@10"], final["valid"]["loss"], final["test"]["ndcg@10"],
               final["test"]["hr@10"]]
    assert all(math.isfinite(v) for v in metrics) and final["valid"]["loss"] > 0
    losses = [json.loads(x).get("train/loss") for x in (s.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [v for v in losses if v is not None] and all(v is None or math.isfinite(v) for v in losses)
    loaded = load_run(s.run_dir)
    assert loaded.meta["model_config"]["item_encoder"] == "hybrid" and loaded.model.n_items == 40


@pytest.mark.parametrize("dataset", ["beauty", "sports"])
def test_hybrid_configs_are_the_text_recipe_with_an_id_table(dataset: str) -> None:
    hybrid = resolve_run_config(CONFIGS / f"{dataset}_hybrid_ce.toml", ["data.dataset=x", "data.tokens=y"])
    text = resolve_run_config(CONFIGS / f"{dataset}_text_ce.toml", ["data.dataset=x", "data.tokens=y"])
    assert hybrid.model.item_encoder == "hybrid"
    assert hybrid.model == type(text.model)(**{**vars(text.model), "item_encoder": "hybrid"})
    assert (hybrid.train, hybrid.eval, hybrid.data) == (text.train, text.eval, text.data)
