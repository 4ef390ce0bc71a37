"""Exact ranks from fast low-precision scores: a rigorous error bound, then fp64 re-scoring of the band.

`full_rank` scores tiles with one fast matmul (bf16 inputs on CUDA). Such a score `S` can differ
from the true dot product `s = u·v` of the fp32 vectors, so a bare `S >= S_target` moves ranks
(58% of ranks moved at 100K users x 3M items in bf16). Here every pair gets a bound `B` with
`|S - s| + |t32 - r| <= B`, where `r` is the target's exact score and `t32` its fp32 rounding:

- `S - t32 >  B`: the item certainly scores at least the target (counted);
- `S - t32 < -B`: it certainly scores below it (not counted);
- otherwise (the band): re-scored exactly and compared with `r`.

The bound, with `u = u_hi + u_lo` (`u_hi` the matmul's input rounding, `u_lo` the exact residual):

    s - u_hi·v_hi = u_hi·v_lo + u_lo·v_hi + u_lo·v_lo          (input rounding)
    |fl(u_hi·v_hi) - u_hi·v_hi| <= a ||u_hi|| ||v_hi||         (fp32 accumulation, a = d 2^-21)

and Cauchy-Schwarz on each term gives `B = ||u_hi|| N0_i + ||u_lo|| N1_i + tau_u`, a rank-2
product computed with one small `addmm` per tile (inflated by 1% to cover its own rounding).
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
"""Safety factor on the bound: covers rounding in computing the bound itself (TF32/bf16 addmm)."""
ACC_PER_TERM = 2.0**-21
"""Accumulation error per summed term, relative to sum |u_j v_j| (textbook fp32: 2^-24)."""
FLOOR = 2.0**-140
"""Absolute slack for sub-normal scores, where relative bounds stop holding."""
SAFE_MAGNITUDE = 1e30
"""Largest product of norms the fast path accepts; beyond it fp32 sums could overflow."""
PAIRS_PER_BATCH = 1 << 20


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
        hi = low.double().norm(dim=1)
        lo = residual.double().norm(dim=1)
        if device.type == "cpu":
            low = low.float()
        return Side(exact, low, hi, lo)
    norm = exact.double().norm(dim=1)
    r = _residual_factor(dtype, device)
    return Side(exact, exact, norm * (1 + r), norm * r)


def item_bound_factors(items: Side, d: int, rounded_output: bool) -> torch.Tensor:
    """`[2, I+1]` fp32 `(N0, N1)` with `|S - s| <= ||u_hi|| N0 + ||u_lo|| N1` (row 0 zeroed)."""
    a = ACC_PER_TERM * (d + 2)
    v1, v2 = items.hi_norm, items.lo_norm
    n0 = v2 + a * (v1 + v2)
    if rounded_output:  # bf16 output rounding: |err| <= 2^-8 |S| <= 2^-8 ||u_hi|| ||v_hi|| (1 + a)
        n0 = n0 + 2.0**-8 * (1 + a) * v1
    n1 = (1 + a) * (v1 + v2)
    out = torch.stack([n0, n1]) * INFLATE
    out[:, 0] = 0.0
    return out.float()


def user_bound_factors(users: Side) -> torch.Tensor:
    """`[cu, 2]` fp32 `(||u_hi||, ||u_lo||)`, inflated."""
    return (torch.stack([users.hi_norm, users.lo_norm], dim=1) * INFLATE).float()


def is_safe(users: torch.Tensor, items: torch.Tensor) -> bool:
    """True when no fast score can be non-finite: finite vectors, products of norms far from overflow."""
    body = items[1:]
    if not (bool(torch.isfinite(users).all()) and bool(torch.isfinite(body).all())):
        return False
    if users.numel() == 0 or body.numel() == 0:
        return True
    big = max(float(users.abs().max()), float(body.abs().max()))
    u = float(users.double().norm(dim=1).max())
    v = float(body.double().norm(dim=1).max())
    return big < 1e38 and u * v < SAFE_MAGNITUDE


def approx_scores(users_low: torch.Tensor, items_low: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """`[cu, ci]` fp32 fast scores, and whether they were rounded to the input dtype on output."""
    if users_low.dtype in (torch.bfloat16, torch.float16):
        try:
            return torch.mm(users_low, items_low.T, out_dtype=torch.float32), False
        except (RuntimeError, TypeError):
            return (users_low @ items_low.T).float(), True
    return users_low @ items_low.T, False


def rescore_band(
    diff: torch.Tensor,
    bound: torch.Tensor,
    users: torch.Tensor,
    items: torch.Tensor,
    i0: int,
    target_exact: torch.Tensor,
) -> torch.Tensor:
    """Counts `[cu]` of items whose exact score ties or beats the target, among the tile's certain
    and uncertain ones. `diff = S - t32` is consumed (overwritten in place)."""
    count = (diff > bound).sum(1)
    band = diff.abs_().le_(bound)  # 1.0 where |S - t32| <= B (NaN and masked -inf: 0.0)
    pairs = band.nonzero()
    for p0 in range(0, pairs.shape[0], PAIRS_PER_BATCH):
        rows, cols = pairs[p0 : p0 + PAIRS_PER_BATCH].unbind(1)
        exact = dot64(users[rows], items[cols + i0])
        count.index_add_(0, rows, (exact >= target_exact[rows]).long())
    return count
