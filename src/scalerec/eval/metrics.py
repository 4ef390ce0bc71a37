"""Ranking metrics from 1-based target ranks, with bootstrap confidence intervals over users.

Leave-one-out evaluation has exactly one relevant item per user, so every metric is a function of
that item's rank alone (RecBole's full-sort definitions with one positive):

    HR@k   = 1[rank <= k]                      (= Recall@k for one target)
    NDCG@k = 1[rank <= k] / log2(rank + 1)     (ideal DCG is 1)
    MRR@k  = 1[rank <= k] / rank,  MRR = 1 / rank

Keeping metrics as functions of ranks lets ranking (GPU, chunked) and scoring (NumPy, tiny) be
tested separately, and lets the bootstrap resample users without re-ranking anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20, 50)


def _as_ranks(ranks: object) -> np.ndarray:
    """Accept NumPy arrays, lists or torch tensors; return float64 ranks, checking they are >= 1."""
    if hasattr(ranks, "detach"):
        ranks = ranks.detach().cpu().numpy()
    arr = np.asarray(ranks, dtype=np.float64).reshape(-1)
    if arr.size and arr.min() < 1:
        raise ValueError("ranks are 1-based; got a rank below 1")
    return arr


def per_user_metrics(ranks: object, ks: Sequence[int] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-user metric values `{name: float64[U]}` (means of these are the reported metrics)."""
    r = _as_ranks(ranks)
    inv_log = 1.0 / np.log2(r + 1.0)
    inv = 1.0 / r
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit = r <= k
        out[f"ndcg@{k}"] = np.where(hit, inv_log, 0.0)
        out[f"hr@{k}"] = hit.astype(np.float64)
        out[f"mrr@{k}"] = np.where(hit, inv, 0.0)
    out["mrr"] = inv
    return out


def metrics_from_ranks(ranks: object, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Mean NDCG@k, HR@k, MRR@k for each k, and full MRR, from 1-based ranks `[U]`.

    Keys: `ndcg@{k}`, `hr@{k}`, `mrr@{k}`, `mrr`. Empty input gives NaN for every key.
    """
    values = per_user_metrics(ranks, ks)
    return {name: float(v.mean()) if v.size else float("nan") for name, v in values.items()}


def _bootstrap_means(values: np.ndarray, n_boot: int, seed: int, max_cells: int = 1 << 24) -> np.ndarray:
    """Means of `values [U, M]` over `n_boot` resamples of users with replacement -> `[n_boot, M]`.

    Each resample is a count vector over users (a bincount of U draws), so the means are one matmul
    per block of resamples; memory stays at `max_cells` int64 draws whatever U is.
    """
    n_users = values.shape[0]
    rng = np.random.default_rng(seed)
    block = max(1, min(n_boot, max_cells // max(n_users, 1)))
    out = np.empty((n_boot, values.shape[1]))
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        draws = rng.integers(0, n_users, size=(b, n_users))
        draws += np.arange(b)[:, None] * n_users
        counts = np.bincount(draws.ravel(), minlength=b * n_users).reshape(b, n_users)
        out[start : start + b] = counts @ values / n_users
    return out


def bootstrap_ci(
    ranks: object,
    metric: str | Sequence[str] = "ndcg@10",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence interval of a metric's mean over users.

    `metric` is one key of `metrics_from_ranks` (returns `(low, high)`) or a list of keys (returns
    `{key: (low, high)}`, all from the same resamples). Users are resampled with replacement.
    """
    names = [metric] if isinstance(metric, str) else list(metric)
    ks = sorted({int(n.split("@")[1]) for n in names if "@" in n}) or [10]
    per_user = per_user_metrics(ranks, ks)
    unknown = [n for n in names if n not in per_user]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; expected e.g. 'ndcg@10', 'hr@5', 'mrr'")
    values = np.stack([per_user[n] for n in names], axis=1)
    if values.shape[0] == 0:
        nan = (float("nan"), float("nan"))
        return nan if isinstance(metric, str) else {n: nan for n in names}
    means = _bootstrap_means(values, n_boot, seed)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    cis = {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(names)}
    return cis[names[0]] if isinstance(metric, str) else cis


def seed_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of a mean over seeds (None with fewer than two).

    Seeds are few (3-5) and their spread is the run-to-run noise a user would see, so a t-interval on
    the per-seed means is the honest width; the user bootstrap above measures a different thing (the
    test set's sampling noise for one trained model). One definition keeps the accuracy benchmark, the
    transfer study and the committed result scripts agreeing on the same figure.
    """
    n = len(values)
    if n < 2:
        return None
    from scipy import stats

    arr = np.asarray(values, dtype=np.float64)
    mean, sd = float(arr.mean()), float(arr.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * sd / np.sqrt(n)
    return mean - half, mean + half


def metrics_with_ci(
    ranks: object, ks: Sequence[int] = DEFAULT_KS, n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """`{name: {"mean", "low", "high"}}` for every metric (`n_boot=0` leaves out the interval)."""
    means = metrics_from_ranks(ranks, ks)
    if n_boot <= 0:
        return {n: {"mean": m} for n, m in means.items()}
    cis = bootstrap_ci(ranks, list(means), n_boot=n_boot, seed=seed)
    assert isinstance(cis, dict)
    return {n: {"mean": m, "low": cis[n][0], "high": cis[n][1]} for n, m in means.items()}
