"""Model → vectors for ranking: one user vector per history and one vector per catalog item.

The one copy of user encoding: training validation, the final test, `scalerec evaluate`,
transfer and the ranking benchmark all call `user_vectors`, so a run's numbers never depend on
which stage encoded its users. A user vector is the hidden state at the last history item
(the most recent `max_len` items, left-aligned from position 0, padded on the right), the same
vector the service ranks with.

Real histories are short (Amazon Beauty/Games: ~9 items on average at `max_len` 50), so a batch
padded to `max_len` spends most of its positions on padding. Users are therefore encoded longest
first, each forward pass cut to the longest history in it: the model numbers positions from the
left (position p = the p-th kept item) and attention is causal, so the columns cut away come after
every real item and never influence it — a trimmed row gets the same hidden states as in the full
width (up to rounding: a differently shaped pass may sum in another order, ~1e-6 in fp32, which can
swap a near-tie deep in a ranking). Each pass holds at most `batch_size x max_len` positions (the
old full-width budget), so passes of short histories take more users and no pass needs more memory
than before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from scalerec.data.read.sequences import pad_left
from scalerec.device import autocast

if TYPE_CHECKING:
    from scalerec.data.read.sequences import UserSequences
    from scalerec.model.recommender import SequentialRecommender


def length_batches(lengths: np.ndarray, batch_size: int, max_len: int) -> list[np.ndarray]:
    """Row indices of each forward pass: rows sorted by `lengths` (longest first, ties in row order),
    cut so that rows x longest row <= `batch_size x max_len` positions (never fewer than
    `batch_size` rows, since no kept length exceeds `max_len`)."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    budget = max(1, batch_size) * max(1, max_len)
    out, i = [], 0
    while i < len(order):
        width = max(1, int(lengths[order[i]]))  # the longest row left: this pass's width
        n = max(1, budget // width)
        out.append(order[i : i + n])
        i += n
    return out


@torch.no_grad()
def user_vectors(
    model: SequentialRecommender,
    histories: UserSequences,
    max_len: int,
    batch_size: int,
    device: torch.device | str,
    dtype: torch.dtype | None,
    trim: bool = True,
) -> torch.Tensor:
    """`[U, d]` float32 on `device`: hidden state at each history's last item, rows in user order.

    `dtype` is the autocast dtype of the forward pass (None = fp32, no autocast). `trim=False` is
    the older full-width path (every pass `batch_size` users x `max_len` positions), kept to
    measure and test the trimmed one against.
    """
    device = torch.device(device)
    if not trim:
        return _full_width(model, histories, max_len, batch_size, device, dtype)
    lengths = np.minimum(histories.lengths(), max_len)
    if len(lengths) and max_len > model.cfg.max_len:  # the full-width pass refuses it in `embed`
        raise ValueError(f"sequence length {max_len} exceeds model.max_len={model.cfg.max_len}")
    out = torch.empty(len(lengths), model.cfg.d_model, device=device, dtype=torch.float32)
    for rows in length_batches(lengths, batch_size, max_len):
        width = max(1, int(lengths[rows].max()))
        # the `width` most recent items of each row = the first `width` columns of its max_len padding
        padded, kept = pad_left(histories.take(rows), width)
        x = torch.as_tensor(padded, device=device)
        n = torch.as_tensor(kept, device=device)
        with autocast(device, dtype):
            out[torch.as_tensor(rows, device=device)] = model.last_hidden(x, n).float()
    return out


def _full_width(
    model: SequentialRecommender,
    histories: UserSequences,
    max_len: int,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
) -> torch.Tensor:
    """Every history padded to `max_len`, `batch_size` users per pass, in user order."""
    padded, lengths = pad_left(histories, max_len)
    out = []
    for i in range(0, len(padded), batch_size):
        x = torch.as_tensor(padded[i : i + batch_size], device=device)
        n = torch.as_tensor(lengths[i : i + batch_size], device=device)
        with autocast(device, dtype):
            out.append(model.last_hidden(x, n).float())
    return torch.cat(out) if out else torch.zeros(0, model.cfg.d_model, device=device)


@torch.no_grad()
def item_vectors(
    model: SequentialRecommender, device: torch.device | str, dtype: torch.dtype | None
) -> torch.Tensor:
    """`[I+1, d]` float32: every catalog item encoded (row 0 = padding, never ranked)."""
    with autocast(torch.device(device), dtype):
        return model.all_item_vectors().float()
