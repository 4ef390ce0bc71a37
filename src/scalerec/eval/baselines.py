"""Most-popular baseline: the floor every reported model must clear, ranked exactly like models.

The score of an item is its interaction count in the histories available at evaluation time (for
the test split: every interaction except the test targets), identical for all users. Its ranks are
computed in closed form (one sort of the catalog), with the same pessimistic tie rule and the same
seen-item masking as `full_rank`, so its metrics are directly comparable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scalerec.data.read.sequences import UserSequences


def popularity_counts(histories: UserSequences, n_items: int) -> np.ndarray:
    """`int64[n_items+1]` interaction counts over all histories (index 0 = padding = 0)."""
    counts = np.bincount(np.asarray(histories.items, dtype=np.int64), minlength=n_items + 1)
    counts[0] = 0
    return counts[: n_items + 1]


def most_popular_ranks(
    popularity: np.ndarray,
    targets: np.ndarray,
    exclude: UserSequences | None = None,
) -> np.ndarray:
    """1-based ranks `int64[U]` of each target when items are ranked by `popularity [I+1]`.

    rank = 1 + #{items i in 1..I, i != target, not masked : pop_i >= pop_target}.
    """
    pop = np.asarray(popularity, dtype=np.int64)[1:]
    targets = np.asarray(targets, dtype=np.int64)
    sorted_pop = np.sort(pop)
    t_pop = pop[targets - 1]
    at_least = len(pop) - np.searchsorted(sorted_pop, t_pop, side="left")  # includes the target
    ranks = at_least.astype(np.int64)
    if exclude is not None:
        offsets = np.asarray(exclude.offsets)
        rows = np.repeat(np.arange(len(targets)), np.diff(offsets))
        items = np.asarray(exclude.items, dtype=np.int64)
        pairs = np.unique(rows * (len(pop) + 1) + items)  # one count per distinct seen item
        rows, items = pairs // (len(pop) + 1), pairs % (len(pop) + 1)
        hit = (items != targets[rows]) & (items > 0) & (pop[np.maximum(items, 1) - 1] >= t_pop[rows])
        ranks -= np.bincount(rows[hit], minlength=len(targets))
    return ranks


def most_popular_topk(popularity: np.ndarray, k: int) -> np.ndarray:
    """The k most popular item ids (ties broken by lower id), same for every user."""
    pop = np.asarray(popularity)[1:]
    order = np.lexsort((np.arange(len(pop)), -pop))
    return order[:k] + 1
