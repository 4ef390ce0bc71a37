"""A hybrid (text + ID) run on another catalog: its ID rows name source items, so loading it over a
new catalog, fine-tuning it on a target domain, or serving a new item scores those items by text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import pretrain_run
from scalerec.config import load
from scalerec.rundir import load_run
from scalerec.serve.run_encoder import RunEncoder
from scalerec.transfer.finetune import FinetuneConfig, finetune


@pytest.fixture(scope="module")
def hybrid_run(world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hybrid")
    return pretrain_run(root / "run", world["source"], world["tokens"], item_encoder="hybrid", epochs=2)


def _text_only(model) -> torch.Tensor:
    """[n_items, d]: every catalog item's vector from its tokens alone (no ID part)."""
    enc = model.item_encoder
    return model.encode_tokens({f: getattr(enc, f"table_{f}")[1:] for f in enc.fields})


def _finetune(world: dict[str, Path], run: Path, strategy: str, out: Path) -> dict:
    sets = [f"pretrained={run}", f"data={world['target']}", f"out={out}", f"strategy={strategy}", "epochs=1",
            "batch_size=16", "n_negatives=16", "n_boot=20", "tracking_uri=off"]
    return finetune(load(FinetuneConfig, overrides=sets))


def test_own_catalog_keeps_id_rows_and_another_catalog_gets_text_only(
    world: dict[str, Path], hybrid_run: Path, tmp_path: Path
) -> None:
    own = load_run(hybrid_run).model
    assert own.item_encoder.id_rows == 48
    assert not torch.allclose(own.all_item_vectors()[1:], _text_only(own), atol=1e-4)
    # the run's own table passed as a "new catalog" (e.g. `serve --tokens`): same items, IDs kept
    same = load_run(hybrid_run, tokens_dir=world["tokens"], new_catalog=True).model
    assert torch.equal(same.all_item_vectors(), own.all_item_vectors())
    _finetune(world, hybrid_run, "zero-shot", tmp_path / "zs")  # writes the target table (source tokenizer)
    other = load_run(hybrid_run, tokens_dir=tmp_path / "zs" / "tokens", new_catalog=True).model
    assert other.n_items == 32 and other.item_encoder.id_rows == 32
    assert torch.equal(other.all_item_vectors()[1:], _text_only(other))


def test_zero_shot_and_full_finetuning_of_a_hybrid(
    world: dict[str, Path], hybrid_run: Path, tmp_path: Path
) -> None:
    zs = _finetune(world, hybrid_run, "zero-shot", tmp_path / "zs")
    assert zs["item_encoder"] == "hybrid" and zs["n_cold_targets"] > 0
    assert zs["test"]["cold"]["n"] == zs["n_cold_targets"] and "ndcg@10" in zs["test"]["cold"]
    assert 0 <= zs["test"]["overall"]["ndcg@10"] <= 1
    full = _finetune(world, hybrid_run, "full", tmp_path / "full")
    assert full["targets_seen"] > 0 and np.isfinite(full["test"]["overall"]["ndcg@10"])
    tuned = load_run(tmp_path / "full").model
    assert tuned.cfg.item_encoder == "hybrid" and tuned.n_items == 32 and tuned.item_encoder.id_rows == 32
    assert tuned.item_encoder.emb.weight[1:].abs().sum() > 0  # target ID rows learnt from zero


def test_serving_a_new_item_scores_it_by_text(hybrid_run: Path) -> None:
    enc = RunEncoder(hybrid_run)
    vec = enc.encode_new_item("red apple cherry", "red", ["apple"])
    assert np.isfinite(vec).all() and enc.model.n_items == 49
    new_id = torch.tensor([49])
    assert enc.model.item_encoder.id_rows == 48
    assert np.allclose(enc.model.encode_items(new_id)[0].detach().numpy(), vec, atol=1e-6)
    user = enc.encode_history([1, 5, 9])
    assert np.isfinite(float(user @ vec))
