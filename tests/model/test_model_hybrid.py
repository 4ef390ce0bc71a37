"""The text + ID hybrid item encoder: text vector + ID row, text alone for items the ID table lacks."""

from __future__ import annotations

import pytest
import torch

from scalerec.model import ModelConfig, SequentialRecommender
from scalerec.model.flops import flops_per_target, param_counts
from scalerec.model.sizes import model_config

N_ITEMS, VOCAB = 12, 40


def _table(n_items: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    widths = {"title": 5, "brand": 2}
    table = {f: torch.randint(1, VOCAB, (n_items + 1, n), generator=g) for f, n in widths.items()}
    for t in table.values():
        t[0] = 0  # row 0 = padding
    return table


def _cfg(encoder: str = "hybrid", **kw: object) -> ModelConfig:
    return ModelConfig(item_encoder=encoder, vocab_size=VOCAB, n_items=N_ITEMS, token_dim=8, d_model=16,
                       n_layers=1, n_heads=2, d_ffn=32, max_len=6, dropout=0.0,
                       field_max_len={"title": 5, "brand": 2}, **kw)


def _pair(seed: int = 0) -> tuple[SequentialRecommender, SequentialRecommender]:
    """A hybrid model and the text model holding the same weights minus the ID table."""
    torch.manual_seed(seed)
    hybrid = SequentialRecommender(_cfg())
    text = SequentialRecommender(_cfg("text"))
    missing, unexpected = text.load_state_dict(hybrid.state_dict(), strict=False)
    assert missing == [] and unexpected == ["item_encoder.emb.weight"]
    with torch.no_grad():  # trained ID rows are not small: make the ID part visible in every check
        hybrid.item_encoder.emb.weight[1:] = torch.randn(N_ITEMS, 16)
    for m in (hybrid, text):
        m.set_item_table(_table(N_ITEMS))
        m.eval()
    return hybrid, text


def test_item_vector_is_text_vector_plus_id_row() -> None:
    hybrid, text = _pair()
    ids = torch.tensor([[1, 5, 12], [3, 0, 0]])
    want = text.encode_items(ids) + hybrid.item_encoder.emb.weight[ids]
    assert torch.allclose(hybrid.encode_items(ids), want, atol=1e-6)
    assert not torch.allclose(hybrid.encode_items(ids[:, :1]), text.encode_items(ids[:, :1]), atol=1e-3)
    assert torch.equal(hybrid.item_encoder.emb.weight[0], torch.zeros(16))  # padding row
    assert hybrid.all_item_vectors().shape == (N_ITEMS + 1, 16)


def test_forward_backward_shapes_and_gradients_reach_both_parts() -> None:
    torch.manual_seed(0)
    model = SequentialRecommender(_cfg())
    model.set_item_table(_table(N_ITEMS))
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 6, 7]])
    h = model(x)
    assert h.shape == (2, 4, 16)
    logits = h @ model.all_item_vectors()[1:].T  # [2, 4, N_ITEMS]
    logits.logsumexp(-1).sum().backward()
    grad = model.item_encoder.emb.weight.grad
    assert grad is not None and grad[1:].abs().sum() > 0
    assert torch.equal(grad[0], torch.zeros(16))  # padding row never moves
    assert model.item_encoder.adapter.weight.grad.abs().sum() > 0
    assert model.item_encoder.token_emb["title"].weight.grad.abs().sum() > 0


def test_new_item_is_scored_by_its_text_alone() -> None:
    hybrid, text = _pair()
    table = _table(N_ITEMS)
    new_row = {f: torch.randint(1, VOCAB, (1, t.shape[1]), generator=torch.Generator().manual_seed(7))
               for f, t in table.items()}
    grown = {f: torch.cat([t, new_row[f]]) for f, t in table.items()}  # POST /items appends a row
    for m in (hybrid, text):
        m.set_item_table(grown)
    new_id = torch.tensor([N_ITEMS + 1])
    vec = hybrid.encode_items(new_id)
    assert torch.equal(vec, text.encode_items(new_id))  # no ID part: exactly the text encoder's vector
    assert torch.equal(vec, hybrid.encode_tokens(new_row))
    user = hybrid.last_hidden(torch.tensor([[1, 2, 3]]), torch.tensor([3]))  # [1, d]
    score = (user @ vec.T).item()
    text_part = (user @ text.item_encoder.encode_tokens(new_row).T).item()
    assert score == pytest.approx(text_part, abs=0) and torch.isfinite(torch.tensor(score))
    # a known item keeps its ID part after the table grew
    assert not torch.allclose(hybrid.encode_items(torch.tensor([1])), text.encode_items(torch.tensor([1])))


def test_reset_item_ids_moves_to_a_new_catalog_text_only() -> None:
    hybrid, text = _pair()
    hybrid.reset_item_ids(20)
    other = _table(20, seed=3)
    for m in (hybrid, text):
        m.set_item_table(other)
    assert torch.equal(hybrid.all_item_vectors(), text.all_item_vectors())
    assert hybrid.cfg.n_items == 20 and hybrid.item_encoder.id_rows == 20
    assert hybrid.param_counts() == param_counts(hybrid.cfg)
    text.reset_item_ids(20)  # no-op for text
    assert text.cfg.n_items == N_ITEMS
    with pytest.raises(ValueError, match="id item encoder"):
        SequentialRecommender(_cfg("id")).reset_item_ids(20)


def test_counts_id_table_like_id_encoder_and_flops_like_text() -> None:
    hybrid, text, ids = (model_config("xs", item_encoder=e, vocab_size=97, n_items=41)
                         for e in ("hybrid", "text", "id"))
    h, t, i = param_counts(hybrid), param_counts(text), param_counts(ids)
    assert h["id_embeddings"] == i["id_embeddings"] == 42 * hybrid.d_model
    assert h["token_embeddings"] == t["token_embeddings"] > 0 and h["item_adapter"] == t["item_adapter"]
    assert h["non_embedding"] == t["non_embedding"]  # N of the scaling fits: the ID table is an embedding
    assert h["total"] == t["total"] + h["id_embeddings"]
    assert SequentialRecommender(hybrid).param_counts() == h
    per = {c.item_encoder: flops_per_target(c, 64, 50, batch_targets=128)["total"]
           for c in (hybrid, text, ids)}
    assert per["hybrid"] == per["text"] > per["id"]


def test_hybrid_needs_both_vocab_and_catalog() -> None:
    with pytest.raises(ValueError, match="n_items"):
        SequentialRecommender(ModelConfig(item_encoder="hybrid", vocab_size=VOCAB))
    with pytest.raises(ValueError, match="vocab_size"):
        SequentialRecommender(ModelConfig(item_encoder="hybrid", n_items=N_ITEMS))
    with pytest.raises(ValueError, match="field_max_len"):
        ModelConfig(item_encoder="hybrid", field_max_len={})
