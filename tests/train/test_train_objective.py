"""The objective's one-pass item encoding gives the same loss and gradients as the plain two-pass path."""

from __future__ import annotations

import torch

from scalerec.data.read.sequences import UserSequences
from scalerec.model import SequentialRecommender
from scalerec.model.sizes import model_config
from scalerec.train import losses
from scalerec.train.objective import NextItemObjective
from scalerec.train.padded import TrainBatches


def test_window_encoding_matches_two_pass():
    torch.manual_seed(0)
    cfg = model_config("tiny", vocab_size=20, field_max_len={"title": 3}, dropout=0.0, max_len=6)
    model = SequentialRecommender(cfg).double()
    table = torch.randint(2, 20, (13, 3))
    table[0] = 0
    model.set_item_table({"title": table})
    seqs = UserSequences.from_lists([[1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 4], [5, 6, 7, 8]], 12)
    batch = next(TrainBatches(seqs, max_len=6, batch_size=3, seed=0).batches())
    neg = torch.tensor([1, 5, 9, 12])
    obj = NextItemObjective(model, "sampled", "all")
    fast = obj(batch.inputs, batch.targets, neg)
    (g_fast,) = torch.autograd.grad(fast, model.item_encoder.adapter.weight)
    h = model(batch.inputs).reshape(-1, cfg.d_model)
    t = batch.targets.reshape(-1)
    slow = losses.sampled_softmax(h, model.encode_items(t), t, neg, model.encode_items(neg), (t > 0).double())
    (g_slow,) = torch.autograd.grad(slow, model.item_encoder.adapter.weight)
    assert torch.allclose(fast.double(), slow.double(), rtol=1e-5)
    assert torch.allclose(g_fast, g_slow, atol=1e-6)


def test_distinct_items_give_the_same_loss_and_gradients():
    """Encoding each distinct item of a batch once (window and negatives together) changes nothing
    but the work: every loss, and the gradient of every parameter, equals the per-position path."""
    from scalerec.train.objective import distinct_items

    torch.manual_seed(0)
    cfg = model_config("tiny", vocab_size=20, field_max_len={"title": 3, "brand": 2}, dropout=0.0, max_len=6)
    model = SequentialRecommender(cfg).double()
    table = {"title": torch.randint(0, 20, (13, 3)), "brand": torch.randint(0, 20, (13, 2))}
    for t in table.values():
        t[0] = 0
    model.set_item_table(table)
    seqs = UserSequences.from_lists([[1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 4], [5, 6, 7, 8], [2, 2, 2, 1]], 12)
    batch = next(TrainBatches(seqs, max_len=6, batch_size=4, seed=0).batches())
    n = batch.targets.numel()
    cases = {
        "sampled": torch.tensor([1, 5, 9, 12, 5]),
        "bce": torch.randint(1, 13, (n,)),
        "full": None,
    }
    for loss, neg in cases.items():
        obj = NextItemObjective(model, loss, "all")
        d = distinct_items(batch.inputs, batch.targets, neg, bucket=8)
        assert d.ids.numel() % 8 == 0 and len(set(d.ids.tolist())) <= d.ids.numel()
        window = torch.cat([batch.inputs[:, :1], batch.targets], 1)
        assert torch.equal(d.ids[d.window], window)
        if neg is not None:
            assert torch.equal(d.ids[d.negatives], neg)
        plain, fast = obj(batch.inputs, batch.targets, neg), obj(batch.inputs, batch.targets, neg, d)
        params = [p for p in model.parameters() if p.requires_grad]
        g_plain = torch.autograd.grad(plain, params, allow_unused=True)
        g_fast = torch.autograd.grad(fast, params, allow_unused=True)
        assert torch.allclose(plain, fast, rtol=1e-10), loss
        for a, b in zip(g_plain, g_fast, strict=True):
            assert (a is None and b is None) or torch.allclose(a, b, atol=1e-10), loss
