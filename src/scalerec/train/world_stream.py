"""Training batches streamed from the known-floor world (`scalerec.data.ingest.world`), made on the device.

A world dataset dir (written by `scalerec.scaling.world.write_world`) holds only the fixed
evaluation users, the catalog and `world.json`; training users are generated here, batch by batch,
from a counter: user k of run seed s is a pure hash of (world seed, s, k), so no example repeats
unless `train_users` caps the stream (then epochs repeat it and D = train_users × targets/user),
the first n users of a stream are the same for every model size (nested D), and memory is the
size of one batch. The generator uses the same int64 hash as the numpy reference, so the batches
equal `World.sequences` bit for bit (tested). Same interface as `scalerec.train.padded.TrainBatches`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalerec.data.ingest import world as W
from scalerec.errors import UserError
from scalerec.train.padded import Batch

VIRTUAL_EPOCH_USERS = 1 << 20
"""Users per 'epoch' of an uncapped stream: only sets the default validation cadence."""
GENERATE_USERS = 65_536
"""Users generated per call on CUDA (several batches at once; on CPU one batch per call)."""
POPULARITY_USERS = 20_000
"""Users drawn (from a stream of their own) to estimate item popularity for the negative sampler."""


def is_world(dataset_dir: str | Path) -> bool:
    return (Path(dataset_dir) / W.WORLD_FILE).is_file()


def read_world(dataset_dir: str | Path) -> tuple[W.World, dict[str, Any]]:
    """The world of a world dataset dir and its manifest (format version checked)."""
    path = Path(dataset_dir) / W.WORLD_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format_version") != W.FORMAT_VERSION:
        raise UserError(f"{path}: format_version {meta.get('format_version')} != {W.FORMAT_VERSION}")
    return W.World.build(W.WorldConfig(**meta["world"])), meta


class WorldGenerator:
    """`World.sequences` on torch tensors (any device): [U] int64 user counters → [U, length] items."""

    def __init__(self, world: W.World, device: torch.device) -> None:
        self.cfg, self.device = world.cfg, device
        self.topic_cdf = torch.as_tensor(W.cdf(world.topic_p), device=device)
        self.succ_cdf = torch.as_tensor(W.cdf(world.succ_p), device=device)
        self.var_cdf = torch.as_tensor(W.cdf(world.variant_p), device=device)

    def _base(self, prev: torch.Tensor, cur: torch.Tensor, prev_v: torch.Tensor, cur_v: torch.Tensor
              ) -> torch.Tensor:
        c = self.cfg
        u = W.uniform(W.hash_keys(c.seed, W.RULE, W.context_class(c, prev, prev_v, cur_v), cur))
        return torch.searchsorted(self.topic_cdf, u, right=True)

    def sequences(self, users: torch.Tensor, stream_seed: int, tag: int = W.TRAIN_USER) -> torch.Tensor:
        c = self.cfg
        pos = torch.arange(c.length, device=self.device, dtype=torch.int64)
        key = W.hash_keys(stream_seed, tag, users.to(torch.int64))[:, None]
        u_first = W.uniform(W.hash_keys(c.seed, W.FIRST, key[:, 0]))
        u_succ = W.uniform(W.hash_keys(c.seed, W.SUCC, key, pos[None, :]))
        u_var = W.uniform(W.hash_keys(c.seed, W.VARIANT, key, pos[None, :]))
        variant = torch.searchsorted(self.var_cdf, u_var, right=True)
        cols = [torch.searchsorted(self.topic_cdf, u_first, right=True)]
        prev = torch.full_like(cols[0], c.n_topics)
        prev_v = torch.zeros_like(prev)
        for t in range(1, c.length):
            if W.is_session_start(c, t):
                cols.append(torch.searchsorted(self.topic_cdf, u_succ[:, t].contiguous(), right=True))
            else:
                j = torch.searchsorted(self.succ_cdf, u_succ[:, t].contiguous(), right=True)
                cols.append((self._base(prev, cols[-1], prev_v, variant[:, t - 1]) + j) % c.n_topics)
            prev, prev_v = cols[-2], variant[:, t - 1]
        topics = torch.stack(cols, dim=1)
        return 1 + topics * c.variants + variant


class WorldBatches:
    """Endless full-window batches of fresh world users (every position a target); resumable."""

    def __init__(
        self,
        dataset_dir: str | Path,
        max_len: int,
        batch_size: int,
        seed: int,
        targets: str = "all",
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
        train_users: int | None = None,
    ) -> None:
        world, _ = read_world(dataset_dir)
        if targets != "all":
            raise UserError("a world dataset streams full windows: train.targets must be 'all'")
        if world.cfg.length - 1 > max_len:
            raise UserError(
                f"world users have {world.cfg.length} items: data.max_len must be >= {world.cfg.length - 1}"
            )
        self.world, self.seed, self.batch_size = world, seed, batch_size
        self.rank, self.world_size, self.train_users = rank, world_size, train_users
        self.device = torch.device(device)
        self.gen = WorldGenerator(world, self.device)
        self.max_len, self.position = max_len, 0

    @property
    def n_units(self) -> int:
        return self.train_users or VIRTUAL_EPOCH_USERS

    def targets_per_epoch(self) -> int:
        return self.n_units * (self.world.cfg.length - 1)

    def __len__(self) -> int:
        return -(-self.n_units // self.batch_size)

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = int(state["position"])

    def batches(self) -> Iterator[Batch]:
        """Endless batches; users are generated `GENERATE_USERS` at a time (the generator is a
        50-step loop of small kernels: one call per batch would leave a GPU waiting on launches)."""
        per_call = max(1, GENERATE_USERS // self.batch_size) if self.device.type == "cuda" else 1
        n = self.world.cfg.length - 1
        while True:
            first = self.position * self.batch_size
            users = torch.arange(first, first + per_call * self.batch_size, device=self.device)
            users = users.view(per_call, self.batch_size)[:, self.rank :: self.world_size].reshape(-1)
            if self.train_users:
                users = users % self.train_users
            seqs = self.gen.sequences(users, self.seed).view(per_call, -1, self.world.cfg.length)
            for chunk in seqs:
                self.position += 1
                inputs = torch.zeros(len(chunk), self.max_len, dtype=torch.int64, device=self.device)
                targets = torch.zeros_like(inputs)
                inputs[:, :n], targets[:, :n] = chunk[:, :-1], chunk[:, 1:]
                yield Batch(inputs, targets, self.batch_size * n)

    def popularity(self) -> np.ndarray:
        """int64 [n_items + 1]: item counts over a sample of users of a separate stream (index 0 = 0)."""
        users = torch.arange(POPULARITY_USERS, device=self.device)
        seqs = self.gen.sequences(users, self.seed, tag=W.WORDS)
        counts = torch.bincount(seqs.ravel(), minlength=self.world.cfg.n_items + 1)
        counts[0] = 0
        return counts.cpu().numpy().astype(np.int64)
