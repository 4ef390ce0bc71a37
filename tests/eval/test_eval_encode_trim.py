"""Length-trimmed user encoding (`user_vectors`) gives the full-width vectors, ranks and metrics.

Every held-out number (validation, final.json's test, `scalerec evaluate`) goes through
`user_vectors`, which now encodes users longest first in passes cut to their longest history.
These tests hold it to the older full-width path (`trim=False`) and to an oracle that encodes each
user alone, for the id, text and hybrid item encoders, on histories of mixed lengths: empty, 1,
max_len, longer than max_len (only the most recent max_len kept).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalerec.data.read.sequences import UserSequences
from scalerec.eval.encode import length_batches, user_vectors
from scalerec.eval.heldout import evaluate_split, rank_heldout
from scalerec.model import ModelConfig, SequentialRecommender

N_ITEMS, VOCAB, MAX_LEN, D = 30, 40, 8, 16
FIELDS = {"title": 5, "brand": 2}
# mixed on purpose and not sorted: the trimmed path reorders users and must put them back
LENGTHS = [3, 1, MAX_LEN, 0, 2, MAX_LEN + 5, 1, 5, MAX_LEN - 1, 4, 1, MAX_LEN, 7, 2, 6, MAX_LEN + 1, 3]


def _model(encoder: str, norm: str = "pre") -> SequentialRecommender:
    torch.manual_seed(0)
    cfg = ModelConfig(
        item_encoder=encoder,
        vocab_size=VOCAB,
        n_items=N_ITEMS,
        token_dim=8,
        d_model=D,
        n_layers=2,
        n_heads=2,
        d_ffn=32,
        max_len=MAX_LEN,
        dropout=0.0,
        norm=norm,
        field_max_len=dict(FIELDS),
    )
    model = SequentialRecommender(cfg)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # positions as large as items: a shifted position would show clearly
        model.pos_emb.weight.normal_(0.0, 1.0, generator=g)
        if encoder != "text":
            model.item_encoder.emb.weight[1:].normal_(0.0, 1.0, generator=g)
    if encoder != "id":
        table = {f: torch.randint(1, VOCAB, (N_ITEMS + 1, n), generator=g) for f, n in FIELDS.items()}
        for t in table.values():
            t[0] = 0  # row 0 = padding
        model.set_item_table(table)
    return model.eval()


def _histories(lengths: list[int] = LENGTHS, seed: int = 0) -> UserSequences:
    rng = np.random.default_rng(seed)
    return UserSequences.from_lists([rng.integers(1, N_ITEMS + 1, n).tolist() for n in lengths], N_ITEMS)


@torch.no_grad()
def _one_by_one(model: SequentialRecommender, hist: UserSequences) -> torch.Tensor:
    """Oracle: each user alone, its most recent MAX_LEN items from position 0, no padding at all."""
    out = []
    for u in range(hist.n_users):
        row = hist.row(u)[-MAX_LEN:] if len(hist.row(u)) else np.zeros(1, dtype=np.int64)
        out.append(model(torch.as_tensor(row, dtype=torch.long)[None])[0, -1])
    return torch.stack(out)


@pytest.mark.parametrize("encoder", ["id", "text", "hybrid"])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_trimmed_vectors_equal_full_width_and_each_user_alone(encoder: str, batch_size: int) -> None:
    model, hist = _model(encoder), _histories()
    got = user_vectors(model, hist, MAX_LEN, batch_size, "cpu", None)
    full = user_vectors(model, hist, MAX_LEN, batch_size, "cpu", None, trim=False)
    assert got.shape == (len(LENGTHS), D) and got.dtype == torch.float32
    torch.testing.assert_close(got, full, atol=1e-5, rtol=0)
    torch.testing.assert_close(got, _one_by_one(model, hist), atol=1e-5, rtol=0)


def test_post_norm_model_is_trimmed_exactly_too() -> None:
    model, hist = _model("id", norm="post"), _histories()
    got = user_vectors(model, hist, MAX_LEN, 4, "cpu", None)
    torch.testing.assert_close(
        got, user_vectors(model, hist, MAX_LEN, 4, "cpu", None, trim=False), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("encoder", ["id", "text", "hybrid"])
@pytest.mark.parametrize("mask_seen", [False, True])
def test_ranks_and_metrics_equal_full_width(encoder: str, mask_seen: bool) -> None:
    model = _model(encoder)
    lengths = [int(n) for n in np.random.default_rng(3).integers(0, MAX_LEN + 4, 60)] + [1, MAX_LEN]
    hist = _histories(lengths, seed=4)
    targets = np.random.default_rng(5).integers(1, N_ITEMS + 1, hist.n_users)
    args = (model, hist, targets, MAX_LEN, 7, "cpu", None, mask_seen)
    new, old = rank_heldout(*args), rank_heldout(*args, trim=False)
    assert torch.equal(new.ranks, old.ranks)
    assert torch.equal(new.items, old.items)
    want = evaluate_split(
        model, hist, targets, MAX_LEN, [5, 10], 7, torch.device("cpu"), None, mask_seen, trim=False
    )
    got = evaluate_split(model, hist, targets, MAX_LEN, [5, 10], 7, torch.device("cpu"), None, mask_seen)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-6), k


def test_passes_are_cut_to_their_longest_history() -> None:
    """The point of the change: no pass is wider than its longest history, and far fewer positions
    are encoded than at full width (a pass wider than needed would still give the right vectors)."""
    model, hist = _model("id"), _histories()
    widths: list[tuple[int, ...]] = []
    hook = model.transformer.register_forward_hook(
        lambda _m, args, _out: widths.append(tuple(args[0].shape[:2]))
    )
    try:
        user_vectors(model, hist, MAX_LEN, 3, "cpu", None)
    finally:
        hook.remove()
    kept = np.minimum(LENGTHS, MAX_LEN)
    assert sum(b for b, _ in widths) == len(LENGTHS)
    assert [t for _, t in widths] == sorted((t for _, t in widths), reverse=True)  # longest first
    assert widths[0][1] == MAX_LEN and widths[-1][1] == max(1, int(np.sort(kept)[: widths[-1][0]].max()))
    assert sum(b * t for b, t in widths) < len(LENGTHS) * MAX_LEN


def test_length_batches_cover_every_row_once_within_the_position_budget() -> None:
    lengths = np.array([0, 5, 50, 1, 50, 9, 9, 2, 0, 33, 1])
    batches = length_batches(lengths, batch_size=2, max_len=50)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert lengths[rows].tolist() == sorted(lengths.tolist(), reverse=True)
    assert rows[:2].tolist() == [2, 4]  # ties keep row order
    for b in batches:
        assert len(b) * max(1, lengths[b].max()) <= 2 * 50
    assert len(batches[0]) == 2 and len(batches[-1]) == 6  # short rows share one wider pass
    assert length_batches(np.zeros(0, dtype=np.int64), 4, 50) == []


def test_empty_and_too_long_max_len() -> None:
    model = _model("id")
    empty = UserSequences.from_lists([], N_ITEMS)
    assert user_vectors(model, empty, MAX_LEN, 4, "cpu", None).shape == (0, D)
    with pytest.raises(ValueError, match="exceeds model.max_len"):  # as the full-width pass refuses it
        user_vectors(model, _histories([1, 2]), MAX_LEN + 1, 4, "cpu", None)
    with pytest.raises(ValueError, match="exceeds model.max_len"):
        user_vectors(model, _histories([1, 2]), MAX_LEN + 1, 4, "cpu", None, trim=False)
