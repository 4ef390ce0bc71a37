"""Exact ranks from fast low-precision scores: a rigorous error bound, then fp64 re-scoring of the band.

`full_rank` scores tiles with one fast matmul (bf16 inputs on CUDA). Such a score `S` can differ
from the true dot product `s = u·v` of the fp32 vectors, so a bare `S >= S_target` moves ranks
(58% of ranks moved at 100K users x 3M items in bf16). Here every pair gets a bound `B` with
`|S - s| <= B`; with `r` the target's exact score:

- `S > r + B`: the item certainly scores at least the target (counted);
- `S < r - B`: it certainly scores below it (not counted);
- otherwise (the band): re-scored exactly and compared with `r`.

`r +- B` are rounded outwards to fp32, so the tests are two compare-and-sum passes per tile.
Rows with a band are settled in two more steps: for bf16, their scores again as bf16x3
(`u_hi v_hi + u_hi v_mid + u_mid v_hi`, three bf16 matmuls) with a bound 16x+ tighter, and what is
still in that band is compared in fp64 (`at_least`).

The bound, with `u = u_hi + u_lo` (`u_hi` the matmul's input rounding, `u_lo` the exact residual):

    s - u_hi·v_hi = u_hi·v_lo + u_lo·v_hi + u_lo·v_lo          (input rounding)
    |fl(u_hi·v_hi) - u_hi·v_hi| <= a ||u_hi|| ||v_hi||         (fp32 accumulation, a = d 2^-21)

and Cauchy-Schwarz on each term gives `B_ui = ||u_hi|| N0_i + ||u_lo|| N1_i` (inflated by 1%).
Per tile, `B_u` takes the largest `N` of the tile's items, so one threshold pair serves a row.
`a` is 8x the textbook `d 2^-24` so tensor cores that truncate while accumulating stay inside.

The reference score `r`/`s` is the dot product of the fp32 vectors summed in fp64 in a fixed
order (`dot64`): products of fp32 numbers are exact in fp64, so it is the same on every device,
chunking and precision, and equals the fp32 brute-force score up to fp32's own rounding. Ranks are
therefore identical whatever the device or `dtype`; only the time differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

INFLATE = 1.01
"""Safety factor on the bound: covers the rounding of the norms and of the bound arithmetic."""
ACC_PER_TERM = {"cpu": 2.0**-23, "cuda": 2.0**-21}
"""Accumulation error per summed term, relative to sum |u_j v_j|: textbook fp32 is 2^-24 (IEEE
round-to-nearest, any order); twice that on CPU, 8x on GPUs whose tensor cores may truncate."""
FLOOR = 2.0**-140
"""Absolute slack for sub-normal scores, where relative bounds stop holding."""
SAFE_MAGNITUDE = 1e30
"""Largest product of norms the fast path accepts; beyond it fp32 sums could overflow."""
PAIRS_PER_BATCH = 1 << 20
HASH_ROWS = 1 << 16
"""Rows hashed at a time by `duplicate_groups` (bounds its int64 scratch: 64K x d x 8 bytes)."""


def dot64(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`[P, d] x [P, d] -> [P]` fp64 row-wise dot products, summed in order j = 0..d-1.

    Each fp32 x fp32 product is exact in fp64, and the fixed order makes the result bit-identical
    on CPU and GPU and for any batch size, so an item and the target with equal vectors always tie.
    """
    a64 = a.double().T.contiguous()  # [d, P]
    b64 = b.double().T.contiguous()
    acc = torch.zeros(a64.shape[1], dtype=torch.float64, device=a.device)
    for j in range(a64.shape[0]):
        acc.addcmul_(a64[j], b64[j])
    return acc


def _residual_factor(dtype: torch.dtype, device: torch.device) -> float:
    """Worst-case relative input rounding of an fp32 matmul we do not round ourselves (TF32, bf16)."""
    precision = torch.get_float32_matmul_precision()
    if precision == "medium":
        return 2.0**-8
    tf32 = device.type == "cuda" and bool(torch.backends.cuda.matmul.allow_tf32)
    return 2.0**-10 if precision == "high" or tf32 else 0.0


@dataclass
class Side:
    """One side of the matmul (users or items) ready for bounded scoring."""

    exact: torch.Tensor  # [n, d] fp32, the vectors whose dot products define the ranks
    low: torch.Tensor  # [n, d] what the fast matmul consumes (bf16, or fp32 holding bf16 values on CPU)
    hi_norm: torch.Tensor  # [n] fp64 ||x_hi||
    lo_norm: torch.Tensor  # [n] fp64 ||x_lo||
    mid: torch.Tensor | None = None  # [n, d] bf16(x_lo) (like `low`), for the bf16x3 second stage
    mid_norm: torch.Tensor | None = None  # [n] fp64 ||x_mid||
    rest_norm: torch.Tensor | None = None  # [n] fp64 ||x_lo - x_mid||

    def split3(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(mid, mid_norm, rest_norm)`; only bf16/fp16 sides carry them (the bf16x3 stage)."""
        if self.mid is None or self.mid_norm is None or self.rest_norm is None:
            raise ValueError("this side was prepared without a bf16x3 split (fp32 matmul dtype)")
        return self.mid, self.mid_norm, self.rest_norm


def prepare(x: torch.Tensor, dtype: torch.dtype, device: torch.device) -> Side:
    """Round `x` to the matmul dtype and measure what the rounding took away.

    bf16/fp16 inputs are rounded here, so the residual is known exactly. On CPU they are kept in
    fp32 storage (products of bf16 values are exact in fp32, accumulation is fp32), which is how
    the bf16 path is emulated and tested on CPU. For fp32 the backend may still round (TF32):
    that is covered by a worst-case residual.
    """
    exact = x.to(device, torch.float32)
    if dtype in (torch.bfloat16, torch.float16):
        low = exact.to(dtype)
        residual = exact - low.float()  # exact in fp32
        hi = torch.linalg.vector_norm(low, dim=1, dtype=torch.float64)
        lo = torch.linalg.vector_norm(residual, dim=1, dtype=torch.float64)
        mid = residual.to(dtype)
        rest = residual - mid.float()  # exact in fp32, ~2^-18 of x
        mid_n = torch.linalg.vector_norm(mid, dim=1, dtype=torch.float64)
        rest_n = torch.linalg.vector_norm(rest, dim=1, dtype=torch.float64)
        if device.type == "cpu":
            low, mid = low.float(), mid.float()
        return Side(exact, low, hi, lo, mid, mid_n, rest_n)
    norm = torch.linalg.vector_norm(exact, dim=1, dtype=torch.float64)
    r = _residual_factor(dtype, device)
    return Side(exact, exact, norm * (1 + r), norm * r)


def item_bound_factors(items: Side, d: int, rounded_output: bool) -> torch.Tensor:
    """`[2, I+1]` fp64 `(N0, N1)` with `|S - s| <= ||u_hi|| N0_i + ||u_lo|| N1_i` (row 0 zeroed)."""
    a = ACC_PER_TERM["cpu" if items.exact.device.type == "cpu" else "cuda"] * (d + 2)
    v1, v2 = items.hi_norm, items.lo_norm
    n0 = v2 + a * (v1 + v2)
    if rounded_output:  # bf16 output rounding: |err| <= 2^-8 |S| <= 2^-8 ||u_hi|| ||v_hi|| (1 + a)
        n0 = n0 + 2.0**-8 * (1 + a) * v1
    n1 = (1 + a) * (v1 + v2)
    out = torch.stack([n0, n1]) * INFLATE
    out[:, 0] = 0.0
    return out


def refined_item_factors(items: Side, d: int) -> torch.Tensor:
    """`[3, I+1]` fp64 factors of the bf16x3 bound (row 0 zeroed): with `S3 = u_hi v_hi + u_hi v_mid
    + u_mid v_hi` (three matmuls, two fp32 additions), `|S3 - s| <= sum_k ||u_k|| F_k,i` for
    `u_k in (u_hi, u_mid, u_rest)`. The dropped terms are ~2^-18 of the score, so the bound is the
    accumulation error: typically 16x or more narrower than the one-matmul bound (a pair whose values
    are nearly bf16-exact, possible at tiny d, gains less, since this bound keeps its accumulation floor)."""
    a = ACC_PER_TERM["cpu" if items.exact.device.type == "cpu" else "cuda"] * (d + 2) + 2.0**-22
    _, v_mid, v_rest = items.split3()
    v_hi = items.hi_norm
    f0 = a * (v_hi + v_mid) + v_rest  # u_hi: accumulation of A and B, sums, dropped u_hi v_rest
    f1 = a * v_hi + v_mid + v_rest  # u_mid: accumulation of C, dropped u_mid (v_mid + v_rest)
    f2 = v_hi + v_mid + v_rest  # u_rest: dropped u_rest v
    out = torch.stack([f0, f1, f2]) * INFLATE
    out[:, 0] = 0.0
    return out


def refined_user_factors(users: Side) -> torch.Tensor:
    """`[cu, 3]` fp64 `(||u_hi||, ||u_mid||, ||u_rest||)`, inflated."""
    _, mid_norm, rest_norm = users.split3()
    return torch.stack([users.hi_norm, mid_norm, rest_norm], dim=1) * INFLATE


def refined_scores(u_low: torch.Tensor, u_mid: torch.Tensor, v_low: torch.Tensor, v_mid: torch.Tensor):
    """`[cu, ci]` fp32 bf16x3 scores `u_hi v_hi + u_hi v_mid + u_mid v_hi` (fp32 outputs)."""
    s, _ = approx_scores(u_low, v_low)
    s += approx_scores(u_low, v_mid)[0]
    s += approx_scores(u_mid, v_low)[0]
    return s


def user_bound_factors(users: Side) -> torch.Tensor:
    """`[cu, 2]` fp64 `(||u_hi||, ||u_lo||)`, inflated."""
    return torch.stack([users.hi_norm, users.lo_norm], dim=1) * INFLATE


def thresholds(target_exact: torch.Tensor, bound: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 `(lo, hi)` per user, rounded outwards from `r - B` and `r + B` (fp64), so that
    `S > hi` proves `s >= r` and `S < lo` proves `s < r` whenever `|S - s| <= B`."""
    hi64, lo64 = target_exact + bound, target_exact - bound
    hi, lo = hi64.float(), lo64.float()
    inf = torch.full_like(hi, float("inf"))
    hi = torch.where(hi.double() < hi64, torch.nextafter(hi, inf), hi)
    lo = torch.where(lo.double() > lo64, torch.nextafter(lo, -inf), lo)
    return lo, hi


def is_safe(users: torch.Tensor, items: torch.Tensor) -> bool:
    """True when no fast score can be non-finite: finite vectors, products of norms far from overflow."""
    body = items[1:]
    if users.numel() == 0 or body.numel() == 0:
        return True
    # one pass each: a NaN or inf anywhere makes its row's norm non-finite (so does a huge value)
    u = float(torch.linalg.vector_norm(users.float(), dim=1).max())
    v = float(torch.linalg.vector_norm(body.float(), dim=1).max())
    return u * v < SAFE_MAGNITUDE  # False for NaN and inf too


def approx_scores(users_low: torch.Tensor, items_low: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """`[cu, ci]` fp32 fast scores, and whether they were rounded to the input dtype on output."""
    if users_low.dtype in (torch.bfloat16, torch.float16):
        try:
            return torch.mm(users_low, items_low.T, out_dtype=torch.float32), False
        except (RuntimeError, TypeError):
            return (users_low @ items_low.T).float(), True
    return users_low @ items_low.T, False


def count_at_least(
    s: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    users: torch.Tensor,
    items: torch.Tensor,
    i0: int,
    target_exact: torch.Tensor,
    item_group: torch.Tensor | None = None,
    target_group: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per user `[cu]`: items of the tile whose exact score ties or beats the target's.

    `s [cu, ci]` are the fast scores (masked cells -inf). Items above `hi` count, items below `lo`
    do not, and the few in `[lo, hi]` (the band) are re-scored with `dot64`. Rows whose band is empty
    (most of them) cost nothing more: callers pass only rows known to have a band. With `item_group`
    (`duplicate_groups` of all items) and `target_group` (`[cu]`, the targets' groups), band items
    identical to the target are counted as ties without re-scoring.
    """
    count = (s > hi[:, None]).sum(1)
    band = (s >= lo[:, None]).logical_and_(s <= hi[:, None])
    pairs = band.nonzero()
    for p0 in range(0, pairs.shape[0], PAIRS_PER_BATCH):
        rows, cols = pairs[p0 : p0 + PAIRS_PER_BATCH].unbind(1)
        if item_group is not None and target_group is not None:
            # an item whose vector is bitwise the target's has the same fixed-order dot64: a tie, known
            # without scoring (catalogs with thousands of text-less items put all of them in one band)
            same = item_group[cols + i0] == target_group[rows]
            count.index_add_(0, rows[same], torch.ones_like(rows[same]))
            rows, cols = rows[~same], cols[~same]
        count.index_add_(0, rows, at_least(users[rows], items[cols + i0], target_exact[rows]).long())
    return count


def duplicate_groups(x: torch.Tensor) -> torch.Tensor | None:
    """`[n]` int64: the same id for rows that are bitwise identical, or None when every row is distinct.

    Why: identical item vectors (items with the same text, e.g. the 16,555 title-less Sports items of the
    pooled corpus) tie exactly with each other, so `count_at_least` can count them without re-scoring.
    Bitwise (not ==) so that -0.0 and 0.0 rows, which might not sum identically, are never merged.
    Built at every ranker's start, so it is cheap: an exact integer hash of each row (wrapping int64
    arithmetic: equal rows hash equally), then the row-wise sort of `torch.unique` only over rows whose hash
    repeats."""
    bits = x.contiguous().view(torch.int32) if x.dtype == torch.float32 else x.contiguous()
    n = bits.shape[0]
    weights = torch.randint(
        -(2**62), 2**62, (bits.shape[1],), generator=torch.Generator().manual_seed(0), dtype=torch.int64
    ).to(bits.device)
    hashes = torch.empty(n, dtype=torch.int64, device=bits.device)
    for i in range(0, n, HASH_ROWS):
        hashes[i : i + HASH_ROWS] = (bits[i : i + HASH_ROWS].long() * weights).sum(1)
    _, slot, counts = torch.unique(hashes, return_inverse=True, return_counts=True)
    repeated = (counts[slot] > 1).nonzero()[:, 0]
    if repeated.numel() == 0:
        return None
    _, exact_group = torch.unique(bits[repeated], dim=0, return_inverse=True)
    groups = torch.arange(n, device=bits.device) + n  # singletons: ids of their own, above every group
    groups[repeated] = exact_group
    return groups


def at_least(u: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """`[P]` bool: `dot64(u, v) >= r`, settled by one fused fp64 sum where its error cannot matter.

    The fused sum's order is the library's, so it is trusted only where it is farther from `r`
    than both sums' rounding can reach (`2 (d + 2) 2^-53 ||u|| ||v||`); the rest (true ties,
    e.g. an item whose vector equals the target's) go through the fixed-order `dot64`.
    """
    u64, v64 = u.double(), v.double()
    fast = (u64 * v64).sum(-1)
    slack = 2 * (u.shape[1] + 2) * 2.0**-53 * INFLATE * u64.norm(dim=1) * v64.norm(dim=1) + FLOOR
    out = fast >= r
    unsure = ((fast - r).abs() <= slack).nonzero()[:, 0]
    if unsure.numel():
        out[unsure] = dot64(u[unsure], v[unsure]) >= r[unsure]
    return out
