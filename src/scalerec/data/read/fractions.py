"""Nested fractions of a dataset's training users: the data axis that keeps catalog and eval users fixed.

A fraction keeps the first `fraction` of the users in one seeded order, so a smaller fraction's
users are a subset of a larger one's (nested D), whatever the run seed. Only the *training* split is
cut: validation and test keep every user and the catalog stays the dataset's, so every point of a
data-size sweep (`scalerec.scaling.spec.SweepSpec.train_fractions`) or of the transfer study's
learning curves is measured on the same evaluation set (issue 18 item 2: subsets that differ only
in training users). Training popularity (negatives, logQ, most-popular) is then recounted by the
caller on what remains (`item_popularity` of the kept split).
"""

from __future__ import annotations

import math

import numpy as np

from scalerec.data.read.sequences import UserSequences

USER_ORDER_SEED = 20240501
"""Seed of the one user order every fraction is a prefix of (fractions stay nested across run seeds,
so seeds vary the training only)."""


def fraction_rows(n_users: int, fraction: float) -> np.ndarray:
    """int64[n] sorted 0-based user rows of the first `fraction` of `n_users` in the fixed seeded order
    (so the rows of a smaller fraction are a subset of a larger one's); at least one row."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a training-user fraction must lie in (0, 1], got {fraction}")
    n = max(1, math.ceil(fraction * n_users))
    return np.sort(np.random.default_rng(USER_ORDER_SEED).permutation(n_users)[:n])


def keep_fraction(train: UserSequences, fraction: float) -> UserSequences:
    """The training split cut to the rows of `fraction_rows` (all of it, unchanged, at 1)."""
    if fraction >= 1:
        return train
    return train.take(fraction_rows(train.n_users, fraction))


def training_targets(train: UserSequences) -> int:
    """Next-item targets of one pass over `train` (n − 1 per row of n items): D of a run on it."""
    return int(np.maximum(train.lengths() - 1, 0).sum())


def training_users(train: UserSequences) -> int:
    """Rows of `train` that hold at least one target (2+ items)."""
    return int((train.lengths() >= 2).sum())
