"""Shapes, causality, padding invariance, encoders and presets of the sequential recommender."""

from __future__ import annotations

import pytest
import torch

from scalerec.model import ModelConfig, SequentialRecommender
from scalerec.model.sizes import model_config

N_ITEMS, VOCAB = 30, 50


def _table(cfg: ModelConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    table = {}
    for f, n in cfg.field_max_len.items():
        tok = torch.randint(2, VOCAB, (N_ITEMS + 1, n), generator=g)
        lens = torch.randint(0, n + 1, (N_ITEMS + 1, 1), generator=g)
        tok = tok * (torch.arange(n) < lens)  # right padding with 0
        tok[0] = 0
        table[f] = tok
    return table


def _model(encoder: str = "text", norm: str = "pre", **kw) -> SequentialRecommender:
    torch.manual_seed(0)
    cfg = model_config(
        "tiny",
        item_encoder=encoder,
        norm=norm,
        vocab_size=VOCAB,
        n_items=N_ITEMS,
        max_len=12,
        field_max_len={"title": 6, "brand": 3, "categories": 4},
        **kw,
    )
    model = SequentialRecommender(cfg)
    model.set_item_table(_table(cfg))
    return model.eval()


@pytest.mark.parametrize("encoder", ["text", "id"])
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_shapes_and_any_shape_item_ids(encoder: str, norm: str) -> None:
    model = _model(encoder, norm)
    x = torch.randint(1, N_ITEMS + 1, (3, 10))
    assert model(x).shape == (3, 10, 32)
    ids = torch.randint(0, N_ITEMS + 1, (2, 3, 4))
    vec = model.encode_items(ids)
    assert vec.shape == (2, 3, 4, 32)
    torch.testing.assert_close(vec[1, 2], model.encode_items(ids[1, 2]))
    assert model.all_item_vectors(chunk=7).shape == (N_ITEMS + 1, 32)


@pytest.mark.parametrize("encoder", ["text", "id"])
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_causal_future_items_do_not_change_the_past(encoder: str, norm: str) -> None:
    model = _model(encoder, norm)
    x = torch.randint(1, N_ITEMS + 1, (4, 10))
    y = x.clone()
    y[:, 6:] = torch.randint(1, N_ITEMS + 1, (4, 4))
    with torch.no_grad():
        hx, hy = model(x), model(y)
    torch.testing.assert_close(hx[:, :6], hy[:, :6])
    assert not torch.allclose(hx[:, 6:], hy[:, 6:])


def test_right_padding_is_invisible_and_finite() -> None:
    model = _model()
    seq = torch.randint(1, N_ITEMS + 1, (1, 5))
    padded = torch.zeros(1, 12, dtype=torch.long)
    padded[0, :5] = seq
    with torch.no_grad():
        h_short, h_pad = model(seq), model(padded)
        h_empty = model(torch.zeros(2, 12, dtype=torch.long))
    torch.testing.assert_close(h_short, h_pad[:, :5])
    assert torch.isfinite(h_pad).all() and torch.isfinite(h_empty).all()
    lengths = torch.tensor([5])
    torch.testing.assert_close(model.last_hidden(padded, lengths), h_pad[:, 4])


def test_cold_start_encode_tokens_equals_encode_items() -> None:
    model = _model()
    ids = torch.tensor([3, 7, 0, 12])
    tokens = {f: getattr(model.item_encoder, f"table_{f}")[ids] for f in model.cfg.fields}
    torch.testing.assert_close(model.encode_tokens(tokens), model.encode_items(ids))


@pytest.mark.parametrize("pooling", ["mean", "sum"])
def test_pooling_ignores_padding(pooling: str) -> None:
    model = _model(pooling=pooling)
    enc = model.item_encoder
    tok = {
        "title": torch.tensor([[5, 6, 0, 0, 0, 0]]),
        "brand": torch.tensor([[7, 0, 0]]),
        "categories": torch.tensor([[0, 0, 0, 0]]),
    }
    wider = {f: torch.cat([t, torch.zeros(1, 3, dtype=torch.long)], 1) for f, t in tok.items()}
    torch.testing.assert_close(model.encode_tokens(tok), model.encode_tokens(wider))
    emb = enc.token_emb["title"].weight
    pooled = emb[5] + emb[6]
    expected = pooled / 2 if pooling == "mean" else pooled
    torch.testing.assert_close(enc._pool("title", tok["title"])[0], expected)
    torch.testing.assert_close(enc._pool("categories", tok["categories"])[0], torch.zeros_like(expected))


def test_id_and_text_encoders_differ_in_parameters_not_interface() -> None:
    text, ids = _model("text"), _model("id")
    assert text.param_counts()["id_embeddings"] == 0
    assert ids.param_counts()["token_embeddings"] == 0
    assert ids.param_counts()["id_embeddings"] == (N_ITEMS + 1) * 32
    with pytest.raises(ValueError):
        ids.encode_tokens({"title": torch.zeros(1, 2, dtype=torch.long)})


def test_dropout_only_in_training() -> None:
    model = _model(dropout=0.5)
    x = torch.randint(1, N_ITEMS + 1, (2, 8))
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))
        model.train()
        assert not torch.allclose(model(x), model(x))


def test_paper_preset() -> None:
    cfg = model_config("paper-1M", preset="paper", vocab_size=100)
    assert (cfg.norm, cfg.pooling, cfg.dropout) == ("post", "sum", 0.5)
    assert cfg.fields == ("title", "brand") and (cfg.n_layers, cfg.d_model, cfg.d_ffn) == (8, 256, 1024)
    assert model_config("s", preset="paper").d_ffn == 128
    assert model_config("paper-100K").d_ffn == 256


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="n_heads"):
        ModelConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(dropout=1.0)
    with pytest.raises(ValueError, match="vocab_size"):
        SequentialRecommender(ModelConfig())
    with pytest.raises(ValueError, match="unknown model size"):
        model_config("huge")
    with pytest.raises(ValueError, match="exceeds"):
        _model()(torch.ones(1, 13, dtype=torch.long))


def test_precomputed_input_vectors_give_the_same_states() -> None:
    model = _model()
    seq = torch.randint(1, N_ITEMS + 1, (3, 11))
    vecs = model.encode_items(seq)  # encode the window once: inputs seq[:, :-1], targets seq[:, 1:]
    with torch.no_grad():
        torch.testing.assert_close(model(seq[:, :-1], input_vectors=vecs[:, :-1]), model(seq[:, :-1]))
    torch.testing.assert_close(vecs[:, 1:], model.encode_items(seq[:, 1:]))


def test_cpu_dedupe_gives_same_vectors_and_gradients() -> None:
    model = _model()
    ids = torch.randint(0, N_ITEMS + 1, (6, 9))
    grads = []
    for dedupe in (True, False):
        model.zero_grad()
        model.item_encoder.dedupe = dedupe
        vec = model.encode_items(ids)
        (vec * torch.linspace(-1, 1, vec.shape[-1])).sum().backward()
        grads.append((vec.detach(), [p.grad.clone() for p in model.item_encoder.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(a, b)


def test_token_ids_outside_the_vocabulary_are_rejected() -> None:
    model = _model()
    table = _table(model.cfg)
    table["title"][3, 0] = VOCAB
    with pytest.raises(ValueError, match="outside"):
        model.set_item_table(table)


def test_config_round_trips_through_the_config_loader(tmp_path) -> None:
    from scalerec.config import dumps_toml, load
    from scalerec.errors import UserError

    cfg = load(ModelConfig, overrides=["field_max_len={title=10, brand=4}", "norm=post", "d_model=48"])
    assert cfg.fields == ("title", "brand") and cfg.norm == "post"
    path = tmp_path / "model.toml"
    path.write_text(dumps_toml(cfg))
    assert load(ModelConfig, toml=path) == cfg
    with pytest.raises(UserError, match="norm"):
        load(ModelConfig, overrides=["norm=middle"])
    with pytest.raises(UserError, match="n_heads"):
        load(ModelConfig, overrides=["n_heads=5"])


@pytest.mark.parametrize("mode", ["mean", "sum"])
def test_spread_padding_pooling_equals_padding_idx(mode: str) -> None:
    """The CUDA pooling path (padding slots spread over rows with weight 0) gives the same vectors and
    token-embedding gradients as `embedding_bag(padding_idx=0)`, all-padding rows included."""
    from scalerec.model.item_encoder import pool_tokens

    gen = torch.Generator().manual_seed(0)
    tok = torch.randint(0, 40, (64, 9), generator=gen)
    tok[tok < 12] = 0  # ~30% padding, scattered, plus whole padding rows
    tok[5] = 0
    tok[7, 1:] = 0
    grad_out = torch.randn(64, 6, generator=gen)
    outs, grads = [], []
    for spread in (False, True):
        weight = torch.randn(40, 6, generator=torch.Generator().manual_seed(1), requires_grad=True)
        out = pool_tokens(tok, weight, mode, spread_pads=spread)
        (out * grad_out).sum().backward()
        outs.append(out.detach())
        grads.append(weight.grad)
    torch.testing.assert_close(outs[1], outs[0])
    torch.testing.assert_close(grads[1], grads[0])
    assert outs[1][5].abs().max() == 0
    if mode == "mean":  # one real token: its row itself
        table = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(outs[1][7], table[tok[7, 0]])


def test_bf16_residual_only_under_autocast_and_close_to_fp32() -> None:
    cfg = ModelConfig(item_encoder="id", n_items=100, d_model=32, n_heads=2, dropout=0.0, residual_bf16=False)
    torch.manual_seed(0)
    ref = SequentialRecommender(cfg).eval()
    alt = SequentialRecommender(ModelConfig(**{**cfg.__dict__, "residual_bf16": True})).eval()
    alt.load_state_dict(ref.state_dict())
    x = torch.randint(1, 101, (4, 10))
    torch.testing.assert_close(alt(x), ref(x))  # no autocast: the flag changes nothing
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert alt.embed(alt.encode_items(x)).dtype == torch.bfloat16
        assert ref.embed(ref.encode_items(x)).dtype == torch.float32
        torch.testing.assert_close(alt(x).float(), ref(x).float(), rtol=0.05, atol=0.05)


def test_tanh_gelu_is_the_approximation_in_every_ffn() -> None:
    cfg = ModelConfig(item_encoder="id", n_items=100, d_model=32, n_heads=2, dropout=0.0)
    torch.manual_seed(0)
    exact = SequentialRecommender(cfg).eval()
    tanh = SequentialRecommender(ModelConfig(**{**cfg.__dict__, "activation": "gelu_tanh"})).eval()
    tanh.load_state_dict(exact.state_dict())  # same parameters: only the activation differs
    mlp = tanh.transformer.layers[0].mlp
    h = torch.randn(5, 32)
    pre = mlp.fc(h)
    want = mlp.proj(0.5 * pre * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (pre + 0.044715 * pre**3))))
    torch.testing.assert_close(mlp(h), want, rtol=1e-5, atol=1e-6)
    x = torch.randint(1, 101, (4, 10))
    assert not torch.equal(tanh(x), exact(x))
    torch.testing.assert_close(tanh(x), exact(x), rtol=0.02, atol=0.02)  # an approximation, a close one
    from scalerec.config import load
    from scalerec.errors import UserError

    with pytest.raises(UserError, match="activation: 'relu' is not one of"):
        load(ModelConfig, overrides=["activation=relu"])
