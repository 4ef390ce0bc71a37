"""Parameter counts by group and analytic FLOPs, checked against the real model and FlopCounterMode."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from scalerec.model import SequentialRecommender
from scalerec.model.flops import flops_per_batch, flops_per_target, param_counts
from scalerec.model.recommender import PARAM_GROUPS
from scalerec.model.sizes import SIZES, model_config

CASES = [
    ("tiny", "text", "pre", None),
    ("tiny", "id", "pre", None),
    ("tiny", "hybrid", "pre", None),
    ("xs", "text", "post", "paper"),
    ("s", "text", "pre", None),
]


@pytest.mark.parametrize(("size", "encoder", "norm", "preset"), CASES)
def test_param_groups_sum_to_numel_and_match_analytic(size, encoder, norm, preset) -> None:
    cfg = model_config(size, preset=preset, item_encoder=encoder, norm=norm, vocab_size=97, n_items=41)
    model = SequentialRecommender(cfg)
    counts = model.param_counts()
    assert (
        sum(counts[g] for g in PARAM_GROUPS) == counts["total"] == sum(p.numel() for p in model.parameters())
    )
    assert counts == param_counts(cfg)
    assert counts["non_embedding"] == counts["total"] - counts["token_embeddings"] - counts["id_embeddings"]


def test_paper_logged_parameter_counts_are_reproduced() -> None:
    # the study's grid spans 10,208 (1 layer x 32) to 9,643,264 (24 layers x 256) non-embedding params
    small = model_config(
        "tiny", preset="paper", d_model=32, n_layers=1, n_heads=1, token_dim=32, vocab_size=30000
    )
    large = model_config("paper-100K", preset="paper", n_layers=24, vocab_size=30000)
    assert param_counts(small)["non_embedding"] == 10_208
    assert param_counts(large)["non_embedding"] == 9_643_264


def test_ladder_is_monotone_and_reaches_a_billion() -> None:
    ladder = [k for k in SIZES if not k.startswith("paper-")]
    sizes = [param_counts(model_config(k, vocab_size=30000))["non_embedding"] for k in ladder]
    assert sizes == sorted(sizes) and sizes[-1] >= 1_000_000_000 and sizes[0] < 100_000


def _measured_flops(model, batch: int, seq: int, n_neg: int, loss: str) -> int:
    n_items = model.n_items
    x = torch.randint(1, n_items + 1, (batch, seq))
    targets = torch.randint(1, n_items + 1, (batch, seq))
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        h = model(x)  # [B, T, d]
        if loss == "sampled":
            neg = model.encode_items(torch.randint(1, n_items + 1, (n_neg,)))  # [K, d]
            pos = (h * model.encode_items(targets)).sum(-1, keepdim=True)  # [B, T, 1]
            logits = torch.cat([pos, h @ neg.T], -1)
            out = torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), torch.zeros(batch * seq, dtype=torch.long)
            )
        else:
            logits = h @ model.all_item_vectors()[1:].T
            out = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten() - 1)
        out.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize(
    ("encoder", "loss", "norm"),
    [("text", "sampled", "pre"), ("id", "sampled", "pre"), ("text", "full", "post"), ("id", "full", "pre"),
     ("hybrid", "sampled", "pre"), ("hybrid", "full", "pre")],
)
def test_flops_match_flop_counter(encoder: str, loss: str, norm: str) -> None:
    torch.manual_seed(0)
    n_items, batch, seq, n_neg = 200, 4, 16, 64
    cfg = model_config("xs", item_encoder=encoder, norm=norm, vocab_size=300, n_items=n_items, max_len=seq)
    model = SequentialRecommender(cfg)
    g = torch.Generator().manual_seed(1)
    model.set_item_table(
        {f: torch.randint(0, 300, (n_items + 1, n), generator=g) for f, n in cfg.field_max_len.items()}
    )
    if encoder != "id":
        model.item_encoder.dedupe = False  # the nominal count encodes every occurrence
    measured = _measured_flops(model, batch, seq, n_neg, loss)
    per_target = flops_per_target(cfg, n_neg, seq, loss=loss, n_items=n_items, batch_targets=batch * seq)
    analytic = per_target["total"] * batch * seq
    assert per_target["total"] == pytest.approx(3 * per_target["forward"])
    assert analytic == pytest.approx(measured, rel=0.05)
    per_batch = flops_per_batch(cfg, batch, seq, n_neg, loss=loss, n_items=n_items)
    assert per_batch["total"] == pytest.approx(analytic)


def test_per_sample_negatives_cost_more_than_shared() -> None:
    cfg = model_config("paper-1M", vocab_size=30000)
    shared = flops_per_target(cfg, 1000, 50, batch_targets=128 * 50)["total"]
    per_sample = flops_per_target(cfg, 1000, 50)["total"]
    assert per_sample > 2 * shared
    with pytest.raises(ValueError):
        flops_per_target(cfg, 0, 50, loss="full")


def test_paper_flops_convention_counts_linear_macs_of_the_forward() -> None:
    from scalerec.model.flops import mfu, paper_flops_per_sample

    cfg = model_config("xs", preset="paper", vocab_size=100, max_len=10)
    model = SequentialRecommender(cfg)
    model.set_item_table({f: torch.randint(0, 100, (31, n)) for f, n in cfg.field_max_len.items()})
    model.item_encoder.dedupe = False  # the nominal count encodes every occurrence
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        model(torch.randint(1, 31, (1, 10)))
        model.encode_items(torch.randint(1, 31, (1 + 7,)))  # target + 7 negatives
    ops = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    linear_macs = sum(v for k, v in ops.items() if k in ("aten.mm", "aten.addmm")) / 2
    assert paper_flops_per_sample(cfg, 7, 10) == linear_macs
    assert mfu(1e6, 989e6) == pytest.approx(1.0) and mfu(5e5, 989e6) == pytest.approx(0.5)


def test_bias_free_model_counts_match_analytic() -> None:
    cfg = model_config("s", bias=False, vocab_size=97)
    model = SequentialRecommender(cfg)
    assert not any(name.endswith("bias") for name, _ in model.transformer.named_parameters())
    assert model.param_counts() == param_counts(cfg)
    assert param_counts(cfg)["blocks"] < param_counts(model_config("s", vocab_size=97))["blocks"]
