"""Each loss against a slow per-row reference; sampled softmax over the whole catalog == full CE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scalerec.train import losses, negatives, schedule


def _data(n=6, d=5, n_items=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, d, generator=g, dtype=torch.float64)
    items = torch.randn(n_items + 1, d, generator=g, dtype=torch.float64)
    targets = torch.randint(1, n_items + 1, (n,), generator=g)
    weight = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0], dtype=torch.float64)[:n]
    return hidden, items, targets, weight


def _ref_softmax(pos_score, neg_scores):
    m = max([pos_score] + neg_scores)
    return -(pos_score - m - math.log(sum(math.exp(s - m) for s in [pos_score] + neg_scores)))


def test_full_ce_matches_reference():
    h, items, t, w = _data()
    got = losses.full_softmax_ce(h, t, items, w, temperature=0.5)
    ref = 0.0
    for i in range(len(t)):
        scores = [float(h[i] @ items[j]) / 0.5 for j in range(1, len(items))]
        negs = [s for j, s in enumerate(scores) if j + 1 != t[i]]
        ref += float(w[i]) * _ref_softmax(scores[t[i] - 1], negs)
    assert float(got) == pytest.approx(ref, rel=1e-6)


def test_sampled_shared_matches_reference():
    h, items, t, w = _data()
    neg_ids = torch.tensor([1, 3, 3, 7, 9, int(t[0])])
    logq = torch.log(torch.rand(10, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    got = losses.sampled_softmax(h, items[t], t, neg_ids, items[neg_ids], w, logq[t], logq[neg_ids], 0.7)
    ref = 0.0
    for i in range(len(t)):
        pos = float(h[i] @ items[t[i]]) / 0.7 - float(logq[t[i]])
        negs = [float(h[i] @ items[j]) / 0.7 - float(logq[j]) for j in neg_ids.tolist() if j != t[i]]
        ref += float(w[i]) * _ref_softmax(pos, negs)
    assert float(got) == pytest.approx(ref, rel=1e-6)


def test_sampled_per_sample_matches_reference():
    h, items, t, w = _data()
    neg_ids = torch.randint(0, 10, (len(t), 4), generator=torch.Generator().manual_seed(2))
    neg_ids[1, 0] = t[1]
    got = losses.sampled_softmax(h, items[t], t, neg_ids, items[neg_ids], w)
    ref = 0.0
    for i in range(len(t)):
        pos = float(h[i] @ items[t[i]])
        negs = [float(h[i] @ items[j]) for j in neg_ids[i].tolist() if j not in (0, int(t[i]))]
        ref += float(w[i]) * _ref_softmax(pos, negs)
    assert float(got) == pytest.approx(ref, rel=1e-6)


def test_sampled_with_whole_catalog_equals_full_ce():
    h, items, t, w = _data(n_items=20)
    all_ids = torch.arange(1, 21)
    sampled = losses.sampled_softmax(h, items[t], t, all_ids, items[all_ids], w)
    assert float(sampled) == pytest.approx(float(losses.full_softmax_ce(h, t, items, w)), rel=1e-6)


def test_bce_matches_reference():
    h, items, t, w = _data()
    neg = torch.tensor([2, 3, 4, 5, 6, 7])
    got = losses.bce_one_negative(h, items[t], items[neg], w)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    ref = sum(
        float(w[i])
        * -(math.log(sig(float(h[i] @ items[t[i]]))) + math.log(1 - sig(float(h[i] @ items[neg[i]]))))
        for i in range(len(t))
    )
    assert float(got) == pytest.approx(ref, rel=1e-6)


def test_popularity_sampler_frequencies_and_logq():
    counts = np.array([0, 100, 0, 10, 1000])
    s = negatives.popularity_sampler(counts, alpha=0.5)
    ids, logq = s.sample((200_000,), torch.Generator().manual_seed(0))
    assert ids.min() >= 1 and ids.max() <= 4
    w = (counts + 1.0) ** 0.5
    w[0] = 0
    p = w / w.sum()
    freq = np.bincount(ids.numpy(), minlength=5) / len(ids)
    assert np.allclose(freq, p, atol=0.005)
    assert torch.allclose(logq, torch.log(torch.as_tensor(p, dtype=torch.float32))[ids])


def test_uniform_and_in_batch():
    ids, logq = negatives.uniform_sampler(5).sample((1000,), torch.Generator().manual_seed(0))
    assert set(ids.tolist()) == {1, 2, 3, 4, 5} and torch.allclose(logq, torch.full((1000,), math.log(0.2)))
    tg = torch.tensor([[3, 4, 0], [4, 0, 0]])
    s = negatives.make_sampler("in_batch", np.array([0, 1, 1, 5, 3]))
    ids, logq = s.sample((50,), torch.Generator().manual_seed(0), targets=tg)
    assert set(ids.tolist()) <= {0, 3, 4}
    assert torch.allclose(s.log_q(torch.tensor([3])), torch.tensor([math.log(5 / 10)]))


def test_schedules():
    assert schedule.warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert schedule.warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert schedule.warmup_cosine(100, 100, 10, min_ratio=0.1) == pytest.approx(0.1)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=50)
    for step in range(50):
        assert schedule.one_cycle(step, 50) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-6)
        opt.step()
        ref.step() if step < 49 else None


def test_sampled_gradients_match_concat_reference():
    h, items, t, w = _data()
    h.requires_grad_(True)
    neg_ids = torch.tensor([1, 3, 5, int(t[2])])
    logq = torch.linspace(-3, -1, 10, dtype=torch.float64)
    loss = losses.sampled_softmax(h, items[t], t, neg_ids, items[neg_ids], w, logq[t], logq[neg_ids], 0.5)
    (g,) = torch.autograd.grad(loss, h)
    h2 = h.detach().clone().requires_grad_(True)
    pos = (h2 * items[t]).sum(-1) / 0.5 - logq[t]
    neg = (h2 @ items[neg_ids].T) / 0.5 - logq[neg_ids]
    neg = neg.masked_fill(neg_ids[None, :] == t[:, None], -1e9)
    ref = ((torch.logsumexp(torch.cat([pos[:, None], neg], 1), 1) - pos) * w).sum()
    (g2,) = torch.autograd.grad(ref, h2)
    assert torch.allclose(g.double(), g2, atol=1e-5)


def _offset_logits_data(n=64, d=64, n_items=500, offset=130.0, spread=2.5, seed=0):
    """Hidden states and item vectors whose logits share a large common offset (as a trained model's
    do, `logit_scale.log`): <h, v> = offset + N(0, spread^2) (dimension 0 carries the offset)."""
    g = torch.Generator().manual_seed(seed)
    hidden = 0.3 * torch.randn(n, d, generator=g)
    hidden[:, 0] = math.sqrt(offset)
    items = spread / (0.3 * math.sqrt(d - 1)) * torch.randn(n_items + 1, d, generator=g)
    items[:, 0] = math.sqrt(offset)
    targets = torch.randint(1, n_items + 1, (n,), generator=g)
    return hidden, items, targets


def _fp32_logits_case(loss: str, device: str) -> None:
    h, items, t = _offset_logits_data()
    h, items, t = h.bfloat16().to(device), items.bfloat16().to(device), t.to(device)  # exact in fp32
    g = torch.Generator().manual_seed(1)
    neg_ids = torch.randint(1, len(items), (32,), generator=g).to(device)
    per_ids = torch.randint(1, len(items), (len(t), 8), generator=g).to(device)

    def run(fp32: bool, h=h, items=items) -> torch.Tensor:
        if loss == "full":
            return losses.full_softmax_ce(h, t, items, fp32=fp32)
        if loss == "sampled":
            return losses.sampled_softmax(h, items[t], t, neg_ids, items[neg_ids], fp32=fp32)
        if loss == "per_sample":
            return losses.sampled_softmax(h, items[t], t, per_ids, items[per_ids], fp32=fp32)
        return losses.bce_one_negative(h, items[t], items[per_ids[:, 0]], fp32=fp32)

    ref = float(run(True, h.float(), items.float()))  # no autocast: fp32 throughout
    with torch.autocast(device, dtype=torch.bfloat16):
        precise, rounded = float(run(True)), float(run(False))
    assert precise == pytest.approx(ref, rel=1e-5)
    assert abs(rounded - ref) > 100 * abs(precise - ref) + 1e-3 * abs(ref)


@pytest.mark.parametrize("loss", ["full", "sampled", "per_sample", "bce"])
def test_fp32_logits_survive_a_large_common_offset_under_bf16_autocast(loss):
    """The default fp32 logits match the fp32 loss under bf16 autocast; bf16 logits ("autocast") lose
    the item differences to bf16's step of 1.0 above 128: the cause of the bf16 training stall."""
    _fp32_logits_case(loss, "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("loss", ["full", "sampled", "per_sample", "bce"])
def test_fp32_logits_survive_a_large_common_offset_under_cuda_autocast(loss):
    """The same under CUDA autocast (cuBLAS bf16 GEMMs; TF32 off, as in a bare process)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _fp32_logits_case(loss, "cuda")


def test_objective_passes_its_logits_precision_to_the_loss(monkeypatch):
    from scalerec.train.objective import NextItemObjective

    seen = []
    monkeypatch.setattr(losses, "full_softmax_ce", lambda *a: seen.append(a[-2:]) or torch.zeros(()))

    class Model(torch.nn.Module):
        def forward(self, inputs, input_vectors=None, positions=None):
            return torch.zeros(*inputs.shape, 4)

        def encode_items(self, ids, distinct=False):
            return torch.zeros(*ids.shape, 4)

        def all_item_vectors(self):
            return torch.zeros(6, 4)

    x = torch.ones(2, 3, dtype=torch.long)
    for flag in (True, False):
        NextItemObjective(Model(), "full", "all", fp32_logits=flag)(x, x)  # type: ignore[arg-type]
    NextItemObjective(Model(), "full", "all", z_loss=1e-4)(x, x)  # type: ignore[arg-type]
    assert seen == [(True, 0.0), (False, 0.0), (True, 1e-4)]
    with pytest.raises(ValueError, match="z_loss"):
        NextItemObjective(Model(), "bce", "all", z_loss=1e-4)  # type: ignore[arg-type]


def _lse_reference(h, items, t, w, neg_ids=None):
    """Per target: (logsumexp of its candidates' logits, its positive's logit), in float64."""
    out = []
    for i in range(len(t)):
        ids = range(1, len(items)) if neg_ids is None else [int(t[i])] + [
            j for j in neg_ids.tolist() if j != t[i]]
        scores = [float(h[i] @ items[j]) for j in ids]
        out.append((math.log(sum(math.exp(s) for s in scores)), float(h[i] @ items[t[i]])))
    return out


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_z_loss_adds_the_squared_logsumexp_per_target(loss):
    h, items, t, w = _data()
    neg_ids = torch.tensor([1, 3, 7, 9])

    def run(z: float) -> torch.Tensor:
        if loss == "full":
            return losses.full_softmax_ce(h, t, items, w, z_loss=z)
        return losses.sampled_softmax(h, items[t], t, neg_ids, items[neg_ids], w, z_loss=z)

    ref = _lse_reference(h, items, t, w, None if loss == "full" else neg_ids)
    ce = sum(float(w[i]) * (lse - pos) for i, (lse, pos) in enumerate(ref))
    zz = sum(float(w[i]) * lse**2 for i, (lse, _) in enumerate(ref))
    assert float(run(0.0)) == pytest.approx(ce, rel=1e-6)  # the losses score in float32
    assert float(run(0.01)) == pytest.approx(ce + 0.01 * zz, rel=1e-6)


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_z_loss_is_the_only_force_on_a_common_logit_offset(loss):
    """Softmax CE has zero gradient along an offset shared by every logit of a target, so nothing stops
    it drifting (it grew to ~300 in packed bf16 training); the z-loss pulls it back towards lse = 0."""
    h, items, t, w = _data(n_items=20)
    neg_ids = torch.tensor([2, 5, 11, 17])
    for z in (0.0, 1e-3):
        c = torch.tensor(50.0, dtype=torch.float64, requires_grad=True)  # the common offset
        hc = torch.cat([h, torch.ones(len(h), 1, dtype=h.dtype)], dim=1)
        ic = torch.cat([items, c.expand(len(items), 1)], dim=1)
        if loss == "full":
            out = losses.full_softmax_ce(hc, t, ic, w, z_loss=z)
        else:
            out = losses.sampled_softmax(hc, ic[t], t, neg_ids, ic[neg_ids], w, z_loss=z)
        (grad,) = torch.autograd.grad(out, c)
        ref = _lse_reference(hc.detach(), ic.detach(), t, w, None if loss == "full" else neg_ids)
        expected = 2 * z * sum(float(w[i]) * lse for i, (lse, _) in enumerate(ref))
        assert float(grad) == pytest.approx(expected, rel=1e-5, abs=1e-5)  # float32 scores
        assert z == 0 or float(grad) > 0.1  # a positive offset is pushed down


def test_logits_precision_benchmark_runs_both_settings_on_cpu(capsys):
    """benchmarks/logits_precision.py: one row per setting through the real runtime, and a summary."""
    import json

    from bench_scripts import load_script

    bench = load_script("benchmarks/logits_precision.py", "logits_precision_bench")
    bench.main(["--rounds", "1", "--steps", "1", "--warmup", "0", "--only", "beauty_like_full_2k"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    measured = {r["logits"]: r for r in rows if "logits" in r}
    assert set(measured) == {"autocast", "fp32"}
    for mode, r in measured.items():
        assert f"train.logits_precision={mode}" in r["overrides"] and r["precision"] == "torch.bfloat16"
    summary = next(r for r in rows if r.get("summary"))
    assert summary["fp32_over_autocast"] == pytest.approx(
        measured["fp32"]["targets_per_s"] / measured["autocast"]["targets_per_s"])
