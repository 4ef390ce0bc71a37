"""Padded training batches: one user window per row, every position a target (SASRec style).

Every position of every sequence is a target, which gives the same signal as the paper's RecBole
pipeline — where every prefix of a history is its own sample — at about 1/n of the compute;
`targets="last"` keeps the paper's one-target-per-sample mode for comparison. Batches are built on
the training device from index tensors, so a GPU is fed without a host-side collate step.

Torch batching lives in `train/` (the data layer stays numpy/pyarrow only); `PackedBatches` in
`scalerec.train.batches` is the padding-free alternative built from the same windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, NamedTuple

import numpy as np
import torch

from scalerec.data.read.sequences import UserSequences
from scalerec.errors import UserError


class Batch(NamedTuple):
    """One local batch. `positions` is None for padded rows; for packed rows, int64[B, T], the
    position of each slot inside its own window (padding slots: 0)."""

    inputs: torch.Tensor  # int64[B, T], 0 = padding
    targets: torch.Tensor  # int64[B, T], next item after inputs[b, t]; 0 = not a target
    n_targets: int  # real targets in the GLOBAL batch (all ranks)
    positions: torch.Tensor | None = None



class TrainBatches:
    """Shuffled training batches, deterministic per (seed, epoch) and resumable mid-epoch.

    A *unit* is one window of one user's sequence. With `targets="all"`, a sequence of n items
    longer than `max_len + 1` is cut into windows of `max_len + 1` items ending at its last item
    (consecutive windows overlap by one item), so every transition is a target exactly once.
    With `targets="last"`, every prefix end is its own unit and only its final position is a
    target (the paper's RecBole sampling: a history of n items is encoded n - 1 times per epoch).

    For DDP, every rank draws the same global permutation and takes rows `rank::world_size` of
    each global batch of `batch_size` units, so any world size sees the same global batches.
    """

    def __init__(
        self,
        train: UserSequences,
        max_len: int,
        batch_size: int,
        seed: int,
        targets: Literal["all", "last"] = "all",
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
    ) -> None:
        if targets not in ("all", "last"):
            raise ValueError(f"targets must be 'all' or 'last', got {targets!r}")
        if batch_size % world_size:
            raise UserError(f"train.batch_size={batch_size} is not divisible by world size {world_size}")
        self.max_len, self.batch_size, self.seed, self.mode = max_len, batch_size, seed, targets
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.device = torch.device(device)
        self.unit_row, self.unit_end = self._units(train)
        off = train.offsets[self.unit_row]
        self.unit_start = np.maximum(off, self.unit_end - max_len - 1) if targets == "all" else None
        if targets == "all":
            self.unit_targets = self.unit_end - self.unit_start - 1
        else:
            self.unit_targets = np.ones(len(self.unit_end), dtype=np.int64)
        self._items = torch.as_tensor(train.items.astype(np.int64), device=self.device)
        self._off = torch.as_tensor(train.offsets, device=self.device)
        # unit arrays live on the device: a batch is built without host-to-device copies
        start = self.unit_start if self.unit_start is not None else self.unit_end
        self._t_end = torch.as_tensor(self.unit_end, device=self.device)
        self._t_start = torch.as_tensor(start, device=self.device)
        self._t_row_off = torch.as_tensor(off, device=self.device)
        self.epoch, self.position = 0, 0
        self._perm_cache: tuple[int, np.ndarray, torch.Tensor] | None = None

    def _units(self, train: UserSequences) -> tuple[np.ndarray, np.ndarray]:
        """(row, absolute end offset) of every unit."""
        lengths = train.lengths()
        rows = np.nonzero(lengths >= 2)[0]
        if self.mode == "last":
            n_units = lengths[rows] - 1
            row = np.repeat(rows, n_units)
            first = np.cumsum(n_units) - n_units
            k = np.arange(len(row)) - np.repeat(first, n_units)
            return row, train.offsets[row] + 2 + k
        step = self.max_len
        n_win = (lengths[rows] - 2) // step + 1
        row = np.repeat(rows, n_win)
        first = np.cumsum(n_win) - n_win
        k = np.arange(len(row)) - np.repeat(first, n_win)
        return row, train.offsets[row + 1] - k * step

    @property
    def n_units(self) -> int:
        return len(self.unit_row)

    def targets_per_epoch(self) -> int:
        return int(self.unit_targets.sum())

    def __len__(self) -> int:
        """Global batches per epoch."""
        full, rest = divmod(self.n_units, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _perm(self, epoch: int) -> tuple[np.ndarray, torch.Tensor]:
        """This epoch's unit order, on the host (target counts) and on the device (gathers)."""
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_units)
            self._perm_cache = (epoch, perm, torch.as_tensor(perm, device=self.device))
        return self._perm_cache[1], self._perm_cache[2]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.batches():
            yield batch.inputs, batch.targets

    def batches(self) -> Iterator[Batch]:
        """Endless stream of batches; epoch/position advance so `state_dict` can resume here."""
        while True:
            perm, perm_t = self._perm(self.epoch)
            while self.position < len(self):
                sl = slice(self.position * self.batch_size, (self.position + 1) * self.batch_size)
                self.position += 1
                yield self._build(perm[sl], perm_t[sl])
            self.epoch, self.position = self.epoch + 1, 0

    def _build(self, units: np.ndarray, units_t: torch.Tensor) -> Batch:
        n_targets = int(self.unit_targets[units].sum())
        local = units_t[self.rank :: self.world_size]
        end = self._t_end[local]
        ar = torch.arange(self.max_len, device=self.device)
        if self.mode == "all":
            start = self._t_start[local]
            n_in = end - start - 1  # inputs = items[start:end-1], targets = items[start+1:end]
        else:
            start = torch.maximum(self._t_row_off[local], end - 1 - self.max_len)
            n_in = end - 1 - start  # inputs = items[start:end-1]; target = items[end-1] at last slot
        mask = ar[None, :] < n_in[:, None]
        idx = torch.where(mask, start[:, None] + ar[None, :], 0)
        inputs = torch.where(mask, self._items[idx], 0)
        if self.mode == "all":
            targets = torch.where(mask, self._items[idx + 1], 0)
        else:
            last = ar[None, :] == (n_in - 1)[:, None]
            targets = torch.where(last, self._items[end - 1][:, None], 0)
        return Batch(inputs, targets, n_targets, None)
