"""The training objective as one `nn.Module`: model forward + item vectors + loss → summed loss.

Wrapping the whole step in a module lets DDP see one `forward` (the negatives are encoded by the
same parameters inside it) and lets `torch.compile` fuse the item encoder, the head and the loss.
Negatives are drawn outside (with the run's generator) and passed in, so the module is a pure
function of its inputs. Padding positions carry weight 0 instead of being filtered out, so the
shapes are static and nothing synchronises with the host.

Text encoders get the batch's *distinct* items (`distinct_items`, computed by the caller outside
any compiled region): a batch of 8,192 windows × 51 positions names a few tens of thousands of
items, so encoding each once — and scattering its gradient once — instead of per position cuts
the token-embedding backward (the largest kernel of a paper-1M step on an H100) several-fold.

Packed rows (`positions` given, `scalerec.train.batches.PackedBatches`) hold several windows per
row, so an input is not the previous slot's target at a window's first slot: input and target
vectors are gathered separately (from the distinct items when given). Padding-free, the loss and
its gradient are those of the same windows in padded rows (tested).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, cast

import torch
from torch import nn

from scalerec.train import losses

if TYPE_CHECKING:
    from scalerec.model.recommender import SequentialRecommender


class DistinctItems(NamedTuple):
    """The distinct item ids of a batch and where each position's id sits among them."""

    ids: torch.Tensor  # [U] distinct ids, padded with 0 to a multiple of `bucket`
    window: torch.Tensor  # [B, T+1] positions of `[inputs[:, :1], targets]` in `ids`
    negatives: torch.Tensor | None  # positions of the negative ids in `ids` (their shape)
    inputs: torch.Tensor | None = None  # [B, T] positions of `inputs` in `ids` (packed rows only)


def distinct_items(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    neg_ids: torch.Tensor | None,
    bucket: int = 2048,
    packed: bool = False,
) -> DistinctItems:
    """Deduplicate the items of one batch (window and negatives together). `torch.unique` waits for
    the device once per step. U changes from batch to batch, so its dimension is marked dynamic:
    `torch.compile` then builds one graph for every U instead of recompiling (20-30 s each on a
    d=1024 model, seen inside a timed window) whenever a batch lands in a new `bucket`.
    `packed`: also locate every input (packed rows, where inputs are not the shifted targets)."""
    window = torch.cat([inputs[:, :1], targets], dim=1)
    parts = [window.reshape(-1)] + ([neg_ids.reshape(-1)] if neg_ids is not None else [])
    parts += [inputs.reshape(-1)] if packed else []
    ids, inverse = torch.unique(torch.cat(parts), return_inverse=True)
    pad = (-ids.numel()) % bucket
    if pad:
        ids = torch.cat([ids, ids.new_zeros(pad)])
    torch._dynamo.maybe_mark_dynamic(ids, 0)
    n, k = window.numel(), neg_ids.numel() if neg_ids is not None else 0
    negatives = inverse[n : n + k].view(neg_ids.shape) if neg_ids is not None else None
    where_inputs = inverse[n + k :].view(inputs.shape) if packed else None
    return DistinctItems(ids, inverse[:n].view(window.shape), negatives, where_inputs)


class NextItemObjective(nn.Module):
    """Sum of next-item losses over the targets of one batch.

    targets="all": every non-padding position of `targets` [B, T] is a target (N = B·T slots).
    targets="last": each row has one target; only that position's hidden state is scored (N = B).
    """

    logq: torch.Tensor  # buffer, registered when a logQ table is given

    def __init__(
        self,
        model: SequentialRecommender,
        loss: str = "sampled",
        targets: str = "all",
        temperature: float = 1.0,
        logq_table: torch.Tensor | None = None,
        fp32_logits: bool = True,
        z_loss: float = 0.0,
    ) -> None:
        super().__init__()
        self.model, self.loss, self.mode, self.temperature = model, loss, targets, temperature
        self.fp32_logits = fp32_logits  # see `losses`: bf16 logits stall a trained model
        if z_loss and loss == "bce":
            raise ValueError("train.z_loss needs a softmax loss (full or sampled), not bce")
        self.z_loss = z_loss  # `losses`: pins the logits' common offset
        self.use_logq = logq_table is not None
        if logq_table is not None:  # float32[I+1]: log q(item) of the negative sampler
            self.register_buffer("logq", logq_table, persistent=False)

    def select(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        need_pos: bool = True,
        window_vecs: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        input_vecs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Hidden states [N, d], target ids [N] and target vectors [N, d] of the scored positions.

        In "all" mode the window `[inputs[:, :1], targets]` ([B, T+1]) is encoded once: its first T
        vectors feed the model (they differ from `encode_items(inputs)` only at the first padding
        slot, which no real position attends to) and its last T are the target vectors — one
        item-encoder pass per step instead of two. Packed rows (`positions`): inputs are encoded
        (or taken from `input_vecs`) on their own, since a window's first input is no target.
        """
        if self.mode == "last":
            hidden = self.model(inputs)  # [B, T, d]
            pos = (targets > 0).int().argmax(dim=1)  # [B]
            idx = pos.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])
            tgt = targets.gather(1, pos[:, None]).squeeze(1)
            return hidden.gather(1, idx).squeeze(1), tgt, self.model.encode_items(tgt) if need_pos else None
        if positions is not None:
            if input_vecs is None:
                input_vecs = self.model.encode_items(inputs)
            tgt_vecs = window_vecs[:, 1:] if window_vecs is not None else self.model.encode_items(targets)
            hidden = self.model(inputs, input_vectors=input_vecs, positions=positions)
            d = hidden.shape[-1]
            return hidden.reshape(-1, d), targets.reshape(-1), tgt_vecs.reshape(-1, d)
        vecs = window_vecs  # [B, T+1, d], when the caller gathered them from the distinct items
        if vecs is None:
            vecs = self.model.encode_items(torch.cat([inputs[:, :1], targets], dim=1))
        hidden = self.model(inputs, input_vectors=vecs[:, :-1])
        d = hidden.shape[-1]
        return hidden.reshape(-1, d), targets.reshape(-1), vecs[:, 1:].reshape(-1, d)

    def forward(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        neg_ids: torch.Tensor | None = None,
        distinct: DistinctItems | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """inputs/targets int64[B, T]; neg_ids [K] (shared) or [N, K] (per target) or [N] (bce);
        `distinct` (from `distinct_items`, "all" mode): encode each item of the batch once;
        `positions` int64[B, T]: the rows are packed ("all" mode, see `PackedBatches`).
        Returns the scalar sum of per-target losses."""
        if positions is not None and self.mode != "all":
            raise ValueError("packed rows need targets='all'")
        item_vecs = window_vecs = input_vecs = None
        if distinct is not None and self.mode == "all":
            item_vecs = self.model.encode_items(distinct.ids, distinct=True)  # [U, d]
            window_vecs = item_vecs[distinct.window]
            if positions is not None and distinct.inputs is not None:
                input_vecs = item_vecs[distinct.inputs]
        hidden, tgt, pos_vecs = self.select(
            inputs, targets, self.loss != "full", window_vecs, positions, input_vecs
        )
        weight = (tgt > 0).float()
        if self.loss == "full":
            items = self.model.all_item_vectors()
            return losses.full_softmax_ce(
                hidden, tgt, items, weight, self.temperature, self.fp32_logits, self.z_loss
            )
        if item_vecs is not None and distinct is not None and distinct.negatives is not None:
            neg_vecs = item_vecs[distinct.negatives]
        else:
            neg_vecs = self.model.encode_items(cast(torch.Tensor, neg_ids))
        pos_vecs = cast(torch.Tensor, pos_vecs)  # requested above for every loss but "full"
        if self.loss == "bce":
            return losses.bce_one_negative(hidden, pos_vecs, neg_vecs, weight, self.fp32_logits)
        pos_logq = self.logq[tgt] if self.use_logq else None
        neg_logq = self.logq[neg_ids] if self.use_logq else None
        return losses.sampled_softmax(
            hidden, pos_vecs, tgt, cast(torch.Tensor, neg_ids), neg_vecs, weight, pos_logq, neg_logq,
            self.temperature, self.fp32_logits, self.z_loss
        )

    def n_slots(self, targets: torch.Tensor) -> int:
        """Number of scored positions N for a targets tensor [B, T]."""
        return targets.shape[0] if self.mode == "last" else targets.numel()
