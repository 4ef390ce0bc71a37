"""Model → vectors for ranking: one user vector per history and one vector per catalog item.

The one copy of user encoding: training validation, the final test, `scalerec evaluate`,
transfer and the ranking benchmark all call `user_vectors`, so a run's numbers never depend on
which stage encoded its users. A user vector is the hidden state at the last history item
(the most recent `max_len` items, left-padded), the same vector the service ranks with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from scalerec.data.read.sequences import pad_left
from scalerec.device import autocast

if TYPE_CHECKING:
    from scalerec.data.read.sequences import UserSequences
    from scalerec.model.recommender import SequentialRecommender


@torch.no_grad()
def user_vectors(
    model: SequentialRecommender,
    histories: UserSequences,
    max_len: int,
    batch_size: int,
    device: torch.device | str,
    dtype: torch.dtype | None,
) -> torch.Tensor:
    """`[U, d]` float32 on `device`: hidden state at each history's last item.

    `dtype` is the autocast dtype of the forward pass (None = fp32, no autocast).
    """
    device = torch.device(device)
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
