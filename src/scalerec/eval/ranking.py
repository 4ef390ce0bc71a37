"""Exact full ranking of each user's target against the whole catalog, in chunks.

Sampled metrics (target vs 100 negatives) overstate and even reorder models (Krichene & Rendle,
KDD 2020), so the reported numbers come from here: every catalog item is scored. A users x items
score matrix for 100K users x 3M items would be 1.2 TB, so scores are produced one
`[chunk_users, chunk_items]` tile at a time and reduced on the spot:

- rank = 1 + #{items i != target : score_i >= score_target} (ties count against the model, so a
  constant scorer gets the worst rank, not the best);
- optional top-k ids: the top-k of every tile are kept and merged with one final topk per user
  chunk (a per-tile merge cost ~10% more on CPU).

Row 0 of the item table is padding and never ranked. Already-seen items can be masked (the target
itself is never masked, even if it was seen before: it is what we rank).

Ranks are exact whatever the precision: on CUDA the matmul runs in bf16 (fp32 output) for speed,
and every item whose bf16 score could tie or beat the target's, given a rigorous bound on the bf16
error, is re-scored exactly (`scalerec.eval.exact`). So validation, `final.json`, `scalerec
evaluate`, CPU and GPU all report the same ranks. A non-finite score (a diverged model) is the
worst score: a NaN target ranks last, a NaN item never beats a finite target.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal, overload

import numpy as np
import torch

from scalerec.eval import exact
from scalerec.memory import GPU_SHARE_ENV

if TYPE_CHECKING:
    from scalerec.data.read.sequences import UserSequences


def _default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _seen_pairs(
    exclude: UserSequences, u0: int, u1: int, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(row-in-chunk, item) pairs of users u0..u1 to mask, sorted by item; the target is kept."""
    offsets = np.asarray(exclude.offsets)
    lo, hi = int(offsets[u0]), int(offsets[u1])
    cols = np.asarray(exclude.items[lo:hi], dtype=np.int64)
    rows = np.repeat(np.arange(u1 - u0), np.diff(offsets[u0 : u1 + 1]))
    keep = cols != targets[u0:u1][rows]
    rows, cols = rows[keep], cols[keep]
    order = np.argsort(cols, kind="stable")
    return rows[order], cols[order]


def _chunk_sizes(
    n_users: int, n_items: int, device: torch.device, chunk_users: int | None, chunk_items: int | None
) -> tuple[int, int]:
    """Tile sizes: 2^23 fp32 cells on CPU (32 MiB, measured best on 2 cores), up to 2^31 on GPU (8 GiB).

    On GPU the tile also fits in 1/64 of the memory free right now (a tile's peak is ~6x its own
    size), divided by `$SCALEREC_GPU_SHARE` processes (a sweep's `--parallel` workers set it), so
    runs sharing one GPU do not run it out of memory: their caching allocators keep what a tile took.
    """
    budget = 1 << 23
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        share = max(1, int(os.environ.get(GPU_SHARE_ENV, "1") or 1))
        budget = int(min(1 << 31, max(1 << 22, free // share // 64)))
    cu = chunk_users or min(n_users, 8192 if device.type == "cuda" else 1024)
    ci = chunk_items or max(1024, budget // max(cu, 1))
    return max(1, min(cu, max(n_users, 1))), max(1, min(ci, n_items))


@overload
def full_rank(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    targets: torch.Tensor | np.ndarray,
    exclude: UserSequences | None = ...,
    chunk_users: int | None = ...,
    chunk_items: int | None = ...,
    topk: Literal[0] = ...,
    device: str | torch.device | None = ...,
    dtype: torch.dtype | None = ...,
) -> torch.Tensor: ...


@overload
def full_rank(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    targets: torch.Tensor | np.ndarray,
    exclude: UserSequences | None = ...,
    chunk_users: int | None = ...,
    chunk_items: int | None = ...,
    topk: int = ...,
    device: str | torch.device | None = ...,
    dtype: torch.dtype | None = ...,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]: ...


@torch.no_grad()
def full_rank(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    targets: torch.Tensor | np.ndarray,
    exclude: UserSequences | None = None,
    chunk_users: int | None = None,
    chunk_items: int | None = None,
    topk: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Rank each user's target among all catalog items, exactly.

    Args:
        user_vecs: `[U, d]` user (sequence) representations.
        item_vecs: `[I+1, d]` item representations; row 0 is padding and never ranked.
        targets: `[U]` target item ids in 1..I.
        exclude: optional histories (`UserSequences` with U rows aligned with `user_vecs`); their
            items are removed from the ranking (the target itself is never removed).
        chunk_users, chunk_items: tile sizes (None = chosen from the device).
        topk: also return the top-k item ids per user (after masking), best first, ordered by the
            fast scores (near-ties may swap; ranks never do).
        device: where to compute (default: `user_vecs.device`).
        dtype: input dtype of the fast matmul: bf16 or fp32 (default bf16 on CUDA, fp32 on CPU).
            Ranks do not depend on it (see `scalerec.eval.exact`); bf16 on CPU emulates CUDA.

    Returns:
        `ranks` int64 `[U]` on CPU (1-based, ties pessimistic, a non-finite score is the worst
        score), or `(ranks, top_ids int64[U, k])` when `topk > 0`.
    """
    dev = torch.device(device) if device is not None else user_vecs.device
    dt = dtype or _default_dtype(dev)
    if dt not in (torch.bfloat16, torch.float32):
        raise ValueError(f"dtype must be bfloat16 or float32, got {dt}")
    n_users, n_rows = user_vecs.shape[0], item_vecs.shape[0]
    tgt = torch.as_tensor(np.asarray(targets) if not torch.is_tensor(targets) else targets).long().cpu()
    if tgt.numel() != n_users:
        raise ValueError(f"targets has {tgt.numel()} entries for {n_users} users")
    if n_users and (int(tgt.min()) < 1 or int(tgt.max()) >= n_rows):
        raise ValueError("targets must be item ids in 1..n_items (row 0 is padding)")
    if exclude is not None and len(exclude.offsets) - 1 != n_users:
        raise ValueError(f"exclude has {len(exclude.offsets) - 1} users, user_vecs has {n_users}")
    k = min(topk, n_rows - 1)
    cu, ci = _chunk_sizes(n_users, n_rows, dev, chunk_users, chunk_items)
    fast = exact.is_safe(user_vecs, item_vecs)
    ranker = _FastRanker(item_vecs, dt, dev) if fast else _SafeRanker(item_vecs, dev)
    ranks = torch.empty(n_users, dtype=torch.int64)
    top_ids = torch.empty((n_users, max(k, 0)), dtype=torch.int64)
    tgt_np = tgt.numpy()
    for u0 in range(0, n_users, cu):
        u1 = min(n_users, u0 + cu)
        seen = _seen_pairs(exclude, u0, u1, tgt_np) if exclude is not None else None
        r, ids = ranker.rank_chunk(user_vecs[u0:u1], tgt[u0:u1].to(dev), ci, k, seen)
        ranks[u0:u1] = r.cpu()
        if k:
            top_ids[u0:u1] = ids.cpu()
    return (ranks, top_ids) if topk > 0 else ranks


def _mask_tile(s: torch.Tensor, i0: int, seen, bounds, j: int, rows: np.ndarray | None = None) -> None:
    """Padding and seen items get -inf (never counted, never in the top-k). `rows`: the chunk rows
    `s` holds, when it holds only some of them."""
    if i0 == 0:
        s[:, 0] = float("-inf")
    if seen is None or bounds[j + 1] <= bounds[j]:
        return
    r, c = seen[0][bounds[j] : bounds[j + 1]], seen[1][bounds[j] : bounds[j + 1]] - i0
    if rows is not None:
        pos = np.full(int(max(r.max(initial=0), rows.max(initial=0))) + 1, -1)
        pos[rows] = np.arange(len(rows))
        keep = pos[r] >= 0
        r, c = pos[r[keep]], c[keep]
    s[torch.from_numpy(r).to(s.device), torch.from_numpy(c).to(s.device)] = float("-inf")


def _mask_targets(s: torch.Tensor, i0: int, i1: int, targets: torch.Tensor) -> None:
    """The target itself is not counted against itself."""
    in_chunk = (targets >= i0) & (targets < i1)
    if bool(in_chunk.any()):
        rows = torch.arange(s.shape[0], device=s.device)[in_chunk]
        s[rows, targets[in_chunk] - i0] = float("-inf")


def _scatter_rows(lo: torch.Tensor, hi: torch.Tensor, rows: torch.Tensor, n: int):
    """Thresholds of `rows` placed in chunk-sized vectors (other rows unused)."""
    full_lo = torch.zeros(n, dtype=lo.dtype, device=lo.device)
    full_hi = torch.zeros(n, dtype=hi.dtype, device=hi.device)
    full_lo[rows], full_hi[rows] = lo, hi
    return full_lo, full_hi


def _merge_topk(tile_s: list[torch.Tensor], tile_i: list[torch.Tensor], k: int) -> torch.Tensor:
    pos = torch.topk(torch.cat(tile_s, 1), k, dim=1).indices
    return torch.gather(torch.cat(tile_i, 1), 1, pos)


class _FastRanker:
    """Finite inputs: fast scores in `dtype`, the band around each target re-scored exactly.

    Per tile: two compare-and-sum passes (`> hi` into a scratch buffer, `>= lo` in place); only
    rows where they differ have items in the band, and those rows alone are scored again and
    settled exactly (`exact.count_at_least`).
    """

    def __init__(self, item_vecs: torch.Tensor, dtype: torch.dtype, device: torch.device) -> None:
        self.items = exact.prepare(item_vecs, dtype, device)
        self.dtype, self.device = dtype, device
        rounded = False
        if dtype == torch.bfloat16 and device.type != "cpu":
            _, rounded = exact.approx_scores(self.items.low[:1], self.items.low[:1])
        self.factors = exact.item_bound_factors(self.items, item_vecs.shape[1], rounded)
        # second stage for bf16: three bf16 matmuls bound the band 16x+ tighter (unless outputs round)
        self.refined = None
        if self.items.mid is not None and not rounded:
            self.refined = exact.refined_item_factors(self.items, item_vecs.shape[1])
        self._buf: torch.Tensor | None = None
        self.groups = exact.duplicate_groups(self.items.exact)  # None when every item vector is distinct

    def _scratch(self, like: torch.Tensor) -> torch.Tensor:
        if self._buf is None or self._buf.shape != like.shape:
            self._buf = torch.empty_like(like)
        return self._buf

    def rank_chunk(self, user_vecs, targets, chunk_items, k, seen):
        """Ranks (and top-k ids) of one user chunk, sweeping the catalog in item tiles."""
        users = exact.prepare(user_vecs, self.dtype, self.device)
        n_rows, cu = self.items.exact.shape[0], users.exact.shape[0]
        r = exact.dot64(users.exact, self.items.exact[targets])  # [cu] exact target scores
        uf = exact.user_bound_factors(users)  # [cu, 2] fp64
        count = torch.zeros(cu, dtype=torch.int64, device=self.device)
        tile_s: list[torch.Tensor] = []  # per-tile top-k, merged once at the end
        tile_i: list[torch.Tensor] = []
        bounds = _tile_bounds(seen, n_rows, chunk_items)
        for j, i0 in enumerate(range(0, n_rows, chunk_items)):
            i1 = min(n_rows, i0 + chunk_items)
            s, _ = exact.approx_scores(users.low, self.items.low[i0:i1])  # [cu, ci] fp32
            _mask_tile(s, i0, seen, bounds, j)
            if k:
                ts, ti = torch.topk(s, min(k, i1 - i0), dim=1)
                tile_s.append(ts)
                tile_i.append(ti + i0)
            _mask_targets(s, i0, i1, targets)
            bound = uf @ self.factors[:, i0:i1].amax(1) + exact.FLOOR  # [cu] >= |S - s| on the tile
            lo, hi = exact.thresholds(r, bound)
            # in place: 1.0/0.0 summed in fp32 (exact below 2^24 items per tile), cheaper than bool sums
            above = torch.sub(s, hi[:, None], out=self._scratch(s)).gt_(0).sum(1, dtype=torch.float32)
            maybe = s.ge_(lo[:, None]).sum(1, dtype=torch.float32)
            count += above.long()
            rows = (maybe > above).nonzero()[:, 0]
            if rows.numel():
                count[rows] += self._settle(users, rows, targets, i0, i1, seen, bounds, j, lo, hi, r)
                count[rows] -= above[rows].long()
        return count + 1, (_merge_topk(tile_s, tile_i, k) if k else None)

    def _settle(self, users, rows, targets, i0, i1, seen, bounds, j, lo, hi, r) -> torch.Tensor:
        """Exact counts of the band rows: their scores again (bf16x3 where available, with its
        tighter bound; any bounded rounding will do), masked again, then `count_at_least`
        re-scores what lies between the thresholds."""
        if self.refined is not None:
            s = exact.refined_scores(users.low[rows], users.split3()[0][rows], self.items.low[i0:i1],
                                     self.items.split3()[0][i0:i1])
            uf3 = exact.refined_user_factors(users)[rows]
            lo, hi = exact.thresholds(r[rows], uf3 @ self.refined[:, i0:i1].amax(1) + exact.FLOOR)
            lo, hi = _scatter_rows(lo, hi, rows, r.shape[0])
        else:
            s, _ = exact.approx_scores(users.low[rows], self.items.low[i0:i1])
        _mask_tile(s, i0, seen, bounds, j, rows.cpu().numpy())
        _mask_targets(s, i0, i1, targets[rows])
        groups = self.groups
        return exact.count_at_least(
            s, lo[rows], hi[rows], users.exact[rows], self.items.exact, i0, r[rows],
            groups, None if groups is None else groups[targets[rows]],
        )


class _SafeRanker:
    """Non-finite or overflowing inputs (a diverged model): fp64 scores, non-finite = worst score."""

    def __init__(self, item_vecs: torch.Tensor, device: torch.device) -> None:
        self.items = item_vecs.to(device, torch.float64)
        self.device = device

    def rank_chunk(self, user_vecs, targets, chunk_items, k, seen):
        users = user_vecs.to(self.device, torch.float64)
        n_rows, cu = self.items.shape[0], users.shape[0]
        r = (users * self.items[targets]).sum(-1)
        bad_target = ~torch.isfinite(r)
        count = torch.zeros(cu, dtype=torch.int64, device=self.device)
        tile_s: list[torch.Tensor] = []
        tile_i: list[torch.Tensor] = []
        bounds = _tile_bounds(seen, n_rows, chunk_items)
        for j, i0 in enumerate(range(0, n_rows, chunk_items)):
            i1 = min(n_rows, i0 + chunk_items)
            s = users @ self.items[i0:i1].T
            s.nan_to_num_(nan=float("-inf"), posinf=float("-inf"))
            _mask_tile(s, i0, seen, bounds, j)
            if k:
                ts, ti = torch.topk(s, min(k, i1 - i0), dim=1)
                tile_s.append(ts)
                tile_i.append(ti + i0)
            _mask_targets(s, i0, i1, targets)
            count += (s >= r[:, None]).sum(1)
        # a non-finite target is the worst score: every item still in the ranking ties or beats it
        rankable = (n_rows - 2) - _n_seen(seen, cu).to(self.device)
        count = torch.where(bad_target, rankable, count)
        return count + 1, (_merge_topk(tile_s, tile_i, k) if k else None)


def _n_seen(seen: tuple[np.ndarray, np.ndarray] | None, cu: int) -> torch.Tensor:
    """Distinct masked (seen, non-target) items per user of the chunk: `[cu]` int64."""
    if seen is None:
        return torch.zeros(cu, dtype=torch.int64)
    rows, cols = seen
    keys = np.unique(rows.astype(np.int64) * (int(cols.max(initial=0)) + 1) + cols)
    return torch.from_numpy(np.bincount(keys // (int(cols.max(initial=0)) + 1), minlength=cu))


def _tile_bounds(seen, n_rows: int, chunk_items: int):
    if seen is None:
        return None
    return np.searchsorted(seen[1], np.arange(0, n_rows + chunk_items, chunk_items))


def brute_force_rank(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    targets: torch.Tensor | np.ndarray,
    exclude: UserSequences | None = None,
) -> torch.Tensor:
    """Reference ranks from the full fp32 score matrix (tests and small baselines only)."""
    return ranks_from_scores((user_vecs.float() @ item_vecs.float().T).clone(), targets, exclude)


def ranks_from_scores(
    scores: torch.Tensor, targets: torch.Tensor | np.ndarray, exclude: UserSequences | None = None
) -> torch.Tensor:
    """Ranks of each row's target in a full `[U, I+1]` score matrix (modified in place): padding row 0 and
    the excluded history never rank, ties count against the target. Shared by the brute-force references."""
    tgt = torch.as_tensor(np.asarray(targets)).long()
    rows = torch.arange(scores.shape[0])
    target_scores = scores[rows, tgt].clone()
    scores[:, 0] = float("-inf")
    if exclude is not None:
        for u in range(scores.shape[0]):
            seen = torch.as_tensor(np.asarray(exclude.items[exclude.offsets[u] : exclude.offsets[u + 1]]))
            scores[u, seen.long()] = float("-inf")
    scores[rows, tgt] = float("-inf")
    return (scores >= target_scores[:, None]).sum(1) + 1
