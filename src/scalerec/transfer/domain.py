"""A domain ready for fine-tuning or evaluation: its leave-one-out split, training popularity and
token table — and the nested target-data fractions of the transfer study's learning curves (the
rule itself lives in `scalerec.data.read.fractions`, shared with `data.train_fraction` of training).

Split out of `finetune.py`, which keeps the orchestration.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from scalerec.data.read.fractions import USER_ORDER_SEED as USER_ORDER_SEED  # re-exported: one rule
from scalerec.data.read.fractions import fraction_rows as fraction_rows  # (moved to the data layer)
from scalerec.data.read.fractions import keep_fraction
from scalerec.data.read.sequences import UserSequences, item_popularity, load_sequences
from scalerec.data.read.splits import leave_one_out
from scalerec.errors import UserError
from scalerec.text import load_item_tokens

if TYPE_CHECKING:
    from scalerec.data.read.splits import Split


@dataclasses.dataclass
class Domain:
    """One domain ready for training/evaluation: its split, popularity and token table."""

    split: Split
    popularity: np.ndarray
    tables: dict[str, torch.Tensor] | None
    n_items: int


def _subsample(histories: UserSequences, targets: np.ndarray, n: int, seed: int):
    if len(targets) <= n:
        return histories, targets
    rows = np.sort(np.random.default_rng(seed).choice(len(targets), n, replace=False))
    return histories.take(rows), targets[rows]


def with_fraction(domain: Domain, fraction: float) -> Domain:
    """`domain` with only the first `fraction` of its training users (in a fixed seeded order);
    popularity (negatives, most-popular) is recounted on what remains."""
    if fraction >= 1:
        return domain
    domain.split.train = keep_fraction(domain.split.train, fraction)
    domain.popularity = item_popularity(domain.split.train)
    return domain


def load_domain(dataset: str | Path, tokens_dir: str | Path | None) -> Domain:
    """Read a dataset dir (and its token table, if any) into a leave-one-out `Domain`."""
    seqs = load_sequences(dataset)
    split = leave_one_out(seqs)
    tables = load_item_tokens(tokens_dir).torch_tables() if tokens_dir is not None else None
    n_items = seqs.n_items
    if tables is not None:
        n_rows = next(iter(tables.values())).shape[0] - 1
        if n_rows < n_items:
            raise UserError(f"{tokens_dir}: token table has {n_rows} items, dataset {dataset} has {n_items}")
        n_items = n_rows
    split.train.n_items = n_items
    return Domain(split, item_popularity(split.train), tables, n_items)
