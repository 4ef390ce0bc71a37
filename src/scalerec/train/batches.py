"""Padding-free training batches: several users' windows packed into each row.

Real histories are short (Amazon Beauty and Games: ~9 items per user), so a batch padded to
`max_len` = 50 is ~89% padding, and a step costs the same whatever is in it. `PackedBatches` cuts
the same units as `scalerec.train.padded.TrainBatches` (windows of at most `max_len + 1` items,
every transition a target exactly once per epoch) and lays them one after another in rows of
`max_len` slots, with `positions` restarting at 0 for each window. The model turns `positions` into
per-window position embeddings and a block-diagonal causal mask (`scalerec.model.transformer`), so
each window gets exactly the hidden states, loss and gradient it gets alone in a padded row.

Packing is per epoch on the host, vectorised over *size classes* rather than units: windows are
placed largest first into the open row with the least room that fits (best-fit decreasing), a whole
class at a time, which is O(units + max_len²) numpy work per epoch. Rows are then shuffled and the
batch stream reads `rows` consecutive rows, straddling epoch ends, so every batch is full and every
shape static (one compiled graph). A batch is built on the device from the epoch's unit arrays with
one `searchsorted` — no host-to-device copy per step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import torch

from scalerec.data.read.sequences import UserSequences
from scalerec.errors import UserError
from scalerec.train.padded import Batch, TrainBatches

PACK_BELOW_FILL = 0.75
"""`train.packing = "auto"` packs when real targets fill less than this share of the padded slots.
Above it, packing saves at most a quarter of the positions and its own costs (a second item-vector
gather, per-slot position embeddings, twice the ids to deduplicate) eat into that; on synthetic
full windows (fill ~1.0) the padded path is kept as it was, on Beauty/Games (fill ~0.12) it packs."""


def windows(train: UserSequences, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, n_targets) of every training window, as `TrainBatches(targets="all")` cuts them: a
    history of n items becomes windows of at most `max_len + 1` items ending at its last item
    (consecutive windows overlap by one item). Window u has inputs `items[start:start+n]` and
    targets `items[start+1:start+n+1]`; `start` is an absolute offset into `train.items`."""
    lengths = train.lengths()
    rows = np.nonzero(lengths >= 2)[0]
    n_win = (lengths[rows] - 2) // max_len + 1
    row = np.repeat(rows, n_win)
    first = np.cumsum(n_win) - n_win
    k = np.arange(len(row)) - np.repeat(first, n_win)
    end = train.offsets[row + 1] - k * max_len
    start = np.maximum(train.offsets[row], end - max_len - 1)
    return start.astype(np.int64), (end - start - 1).astype(np.int64)


def pack(sizes: np.ndarray, capacity: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Best-fit-decreasing bin packing of integer `sizes` (1..capacity) into rows of `capacity`.

    Returns (row int64[n], offset int64[n], n_rows): unit i occupies slots
    `offset[i] .. offset[i] + sizes[i]` of row `row[i]`; rows are numbered in creation order and
    every row has a unit at offset 0. Ties (units of one size, rows of one room) are broken by
    `rng`, so the pairing of windows changes from epoch to epoch.
    """
    if len(sizes) and (sizes.min() < 1 or sizes.max() > capacity):
        raise ValueError(f"sizes must be in [1, {capacity}], got [{sizes.min()}, {sizes.max()}]")
    order = rng.permutation(len(sizes))
    keys = -sizes[order]
    keys = keys.astype(np.int16) if capacity < 2**15 else keys  # int16: numpy's stable sort is a radix sort
    order = order[np.argsort(keys, kind="stable")]
    bounds = np.searchsorted(-sizes[order], -np.arange(capacity + 1), side="left")
    row = np.empty(len(sizes), dtype=np.int64)
    offset = np.empty(len(sizes), dtype=np.int64)
    room: list[list[np.ndarray]] = [[] for _ in range(capacity)]  # open rows by free slots 1..cap-1
    n_rows = 0
    for s in range(capacity, 0, -1):
        units = order[bounds[s] : bounds[s - 1]]
        i = 0
        while i < len(units):
            c = next((c for c in range(s, capacity) if room[c]), None)
            if c is None:  # nothing fits: fresh rows, each holding as many as fit (the last maybe fewer)
                rest, per_row = units[i:], capacity // s
                j = np.arange(len(rest))
                row[rest], offset[rest] = n_rows + j // per_row, (j % per_row) * s
                full, left = divmod(len(rest), per_row)
                if capacity - per_row * s and full:
                    room[capacity - per_row * s].append(np.arange(n_rows, n_rows + full))
                if left:
                    room[capacity - left * s].append(np.array([n_rows + full]))
                n_rows += full + (1 if left else 0)
                break
            pool = np.concatenate(room[c]) if len(room[c]) > 1 else room[c][0]
            k = min(len(pool), len(units) - i)
            row[units[i : i + k]], offset[units[i : i + k]] = pool[:k], capacity - c
            room[c] = [pool[k:]] if k < len(pool) else []
            if c > s:
                room[c - s].append(pool[:k])
            i += k
    return row, offset, n_rows


@dataclass
class EpochPlan:
    """One epoch's packing: units sorted by their slot (`row * row_len + offset`), rows shuffled."""

    slot: np.ndarray  # int64[U] first slot of each unit, ascending
    start: np.ndarray  # int64[U] absolute offset of its first input item
    size: np.ndarray  # int64[U] its targets (= slots it occupies)
    row_targets: np.ndarray  # int64[R] real targets per row
    device: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # slot, start, size on the device

    @property
    def n_rows(self) -> int:
        return len(self.row_targets)


class PackedBatches:
    """Packed training batches of `rows` rows × `max_len` slots; deterministic per (seed, epoch),
    resumable mid-epoch (`state_dict`), DDP-aware like `TrainBatches`: every rank builds the same
    global batch and keeps rows `rank::world_size`, so any world size sees the same global batches
    (when `rows` is not a multiple of the world size, the first ranks get one row more).

    Give `rows` (global rows per batch: a fixed slot budget, what throughput benchmarks compare) or
    `units` (windows a padded batch would hold; rows are then chosen so a batch holds about as many
    windows and targets as the padded one, which keeps steps per epoch and the optimisation as they
    were). Only next-item targets at every position (`train.targets = "all"`) can be packed.
    """

    def __init__(
        self,
        train: UserSequences,
        max_len: int,
        seed: int,
        rows: int | None = None,
        units: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        if (rows is None) == (units is None):
            raise ValueError("give exactly one of rows, units")
        self.max_len, self.seed, self.rank, self.world_size = max_len, seed, rank, world_size
        self.device = torch.device(device)
        self.unit_start, self.unit_targets = windows(train, max_len)
        self._items = torch.as_tensor(train.items.astype(np.int64), device=self.device)
        self._plans: dict[int, EpochPlan] = {}
        self.rows_per_epoch = self._plan(0).n_rows  # of epoch 0; others differ by a row or two
        if rows is None:  # not rounded to the world size: the global batch must not depend on it
            n = cast(int, units)  # exactly one of rows, units is given
            rows = max(1, int(np.ceil(n * self.rows_per_epoch / max(1, self.n_units))))
        if rows < world_size:
            raise UserError(f"a packed batch of {rows} rows cannot feed {world_size} processes; "
                            "raise train.batch_size")
        self.rows = rows
        self.epoch, self.position = 0, 0

    @property
    def n_units(self) -> int:
        return len(self.unit_targets)

    def rows_in_epoch(self, epoch: int) -> int:
        """Rows the packing of `epoch` needs (the stream reads them in order, then the next epoch's)."""
        return self._plan(epoch).n_rows

    def targets_per_epoch(self) -> int:
        return int(self.unit_targets.sum())

    def fill(self) -> float:
        """Share of this epoch's slots that hold a real target (packing efficiency)."""
        return self.targets_per_epoch() / max(1, self._plan(self.epoch).n_rows * self.max_len)

    def __len__(self) -> int:
        """Global batches per epoch (rounded: batches straddle epoch ends, none is partial)."""
        return max(1, round(self.rows_per_epoch / self.rows))

    def state_dict(self) -> dict[str, int | str]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "layout": "packed"}

    def load_state_dict(self, state: dict[str, int | str]) -> None:
        """`position` counts rows of `epoch` already trained on (a padded stream counts batches:
        its state cannot continue here)."""
        if state.get("layout") != "packed":
            raise UserError("this run was saved with padded batches; resume it with --set train.packing=off")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def batches(self) -> Iterator[Batch]:
        """Endless stream of full batches; epoch/position advance so `state_dict` resumes here."""
        if not self.n_units:
            raise UserError("no user has 2 training items: nothing to pack")
        while True:
            pieces, n_targets, need = [], 0, self.rows
            while need:
                plan = self._plan(self.epoch)
                take = min(need, plan.n_rows - self.position)
                pieces.append((plan, self.position, take))
                n_targets += int(plan.row_targets[self.position : self.position + take].sum())
                self.position += take
                need -= take
                if self.position == plan.n_rows:
                    self._plans.pop(self.epoch - 1, None)
                    self.epoch, self.position = self.epoch + 1, 0
            yield self._build(pieces, n_targets)

    def _plan(self, epoch: int) -> EpochPlan:
        if epoch not in self._plans:
            rng = np.random.default_rng([self.seed, epoch])
            row, offset, n_rows = pack(self.unit_targets, self.max_len, rng)
            row = rng.permutation(n_rows)[row]
            slot = row * self.max_len + offset
            order = np.argsort(slot)  # slots are distinct
            slot, start, size = slot[order], self.unit_start[order], self.unit_targets[order]
            dev = self.device
            on_device = (torch.as_tensor(slot, device=dev), torch.as_tensor(start, device=dev),
                         torch.as_tensor(size, device=dev))
            row_targets = np.bincount(row, weights=self.unit_targets, minlength=n_rows).astype(np.int64)
            self._plans[epoch] = EpochPlan(slot, start, size, row_targets, on_device)
        return self._plans[epoch]

    def _build(self, pieces: list[tuple[EpochPlan, int, int]], n_targets: int) -> Batch:
        """Local rows `rank::world_size` of the global rows named by `pieces` (plan, first, count)."""
        parts, seen = [], 0
        for plan, first, count in pieces:
            lo = (self.rank - seen) % self.world_size  # this rank's first row within the piece
            rows = torch.arange(first + lo, first + count, self.world_size, device=self.device)
            parts.append(self._rows(plan, rows))
            seen += count
        inputs, targets, positions = (torch.cat(p) for p in zip(*parts, strict=True))
        return Batch(inputs, targets, n_targets, positions)

    def _rows(self, plan: EpochPlan, rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """inputs, targets, positions ([len(rows), max_len] each) of some rows of `plan`."""
        slot, start, size = plan.device
        t = self.max_len
        slots = rows[:, None] * t + torch.arange(t, device=self.device)[None, :]
        unit = torch.searchsorted(slot, slots, right=True) - 1  # every row has a unit at offset 0
        k = slots - slot[unit]
        live = k < size[unit]
        src = torch.where(live, start[unit] + k, 0)
        inputs = torch.where(live, self._items[src], 0)
        targets = torch.where(live, self._items[src + 1], 0)
        return inputs, targets, torch.where(live, k, 0)


def unpack(batch: Batch) -> Batch:
    """The padded batch of a packed batch's windows: one left-aligned row per window, in slot order.

    Why: the same windows in both layouts, so a check (tests, `benchmarks/packing_grad_probe.py`)
    can compare the two paths' loss and gradients on identical data. A window starts at a slot
    with position 0 that holds an item (padding slots hold item 0)."""
    if batch.positions is None:
        return batch
    inputs, targets, positions = batch.inputs, batch.targets, batch.positions
    t = inputs.shape[1]
    live = inputs > 0
    start = live & (positions == 0)
    window = torch.cumsum(start.flatten().long(), 0).view_as(inputs) - 1  # window index of each slot
    n = int(start.sum())
    out_in = inputs.new_zeros((n, t))
    out_tg = targets.new_zeros((n, t))
    w, k = window[live], positions[live]
    out_in[w, k] = inputs[live]
    out_tg[w, k] = targets[live]
    return Batch(out_in, out_tg, batch.n_targets, None)


class UnpackedBatches:
    """The packed stream's batches laid out padded: one left-aligned row per window (`unpack`), the
    row count rounded up to a multiple of `row_multiple` with empty rows (so few distinct shapes).

    Why: a control for the packing accuracy gap (BENCHMARKS.md, packing control). It keeps which
    windows share a batch and in what order — everything packing changes about the data stream —
    and changes only the layout the model sees. If a run on it tracks the padded runs, the layout
    (kernels, numerics) is the cause; if it tracks the packed runs, the batch composition is.
    Costs what padded training costs; not meant for anything else (`train.packing="unpacked"`)."""

    def __init__(self, packed: PackedBatches, row_multiple: int = 32) -> None:
        self.packed, self.row_multiple = packed, row_multiple

    @property
    def n_units(self) -> int:
        return self.packed.n_units

    def targets_per_epoch(self) -> int:
        return self.packed.targets_per_epoch()

    def __len__(self) -> int:
        return len(self.packed)

    def state_dict(self) -> dict[str, int | str]:
        return {**self.packed.state_dict(), "layout": "unpacked"}

    def load_state_dict(self, state: dict[str, int | str]) -> None:
        if state.get("layout") != "unpacked":
            raise UserError("this run was not saved with train.packing=unpacked; resume it with its own "
                            "setting")
        self.packed.load_state_dict({**state, "layout": "packed"})

    def batches(self) -> Iterator[Batch]:
        for batch in self.packed.batches():
            rows = unpack(batch)
            pad = (-rows.inputs.shape[0]) % self.row_multiple
            inputs, targets = (torch.nn.functional.pad(x, (0, 0, 0, pad))
                               for x in (rows.inputs, rows.targets))
            yield Batch(inputs, targets, rows.n_targets, None)


Packing = Literal["auto", "on", "off", "unpacked"]


def wants_packing(packing: Packing, targets: str, train: UserSequences, max_len: int) -> bool:
    """Whether to pack: "on"/"off" as said (only `targets="all"` can be packed); "auto" packs when
    real targets would fill less than `PACK_BELOW_FILL` of the padded slots; "unpacked" (a control)
    builds the packed stream, then lays it out padded (`UnpackedBatches`)."""
    if packing == "off":
        return False
    if targets != "all":
        if packing in ("on", "unpacked"):
            raise UserError(f"train.packing='{packing}' needs train.targets='all' "
                            "(one-target rows are not packed)")
        return False
    if packing in ("on", "unpacked"):
        return True
    _, size = windows(train, max_len)
    return bool(len(size) and size.sum() / (len(size) * max_len) < PACK_BELOW_FILL)


def train_batches(
    train: UserSequences,
    max_len: int,
    units: int,
    seed: int,
    targets: Literal["all", "last"],
    packing: Packing,
    rank: int = 0,
    world_size: int = 1,
    device: str | torch.device = "cpu",
) -> TrainBatches | PackedBatches | UnpackedBatches:
    """The run's batch stream: packed (about `units` windows per batch) or padded (`units` rows)."""
    if wants_packing(packing, targets, train, max_len):
        packed = PackedBatches(train, max_len, seed, units=units, rank=rank, world_size=world_size,
                               device=device)
        return UnpackedBatches(packed) if packing == "unpacked" else packed
    return TrainBatches(train, max_len, units, seed, targets, rank, world_size, device)
