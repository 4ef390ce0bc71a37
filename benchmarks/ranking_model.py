"""The model in the timed loop for `benchmarks/ranking.py --model` (issue 19 item 3).

Inside one timed window: the sequence model encodes every user's history (`scalerec.eval.encode.
user_vectors`, the same code as evaluation), the text encoder encodes every catalog item, and
`full_rank` ranks every target exactly (bf16 scores on CUDA, band re-scored in fp64). The time is
reported split into user encoding, item encoding and ranking. After the window, the ranks of a
slice of users are checked against an fp64 brute force over the whole catalog (agreement must be
1.0) beside what plain bf16 ranking would have reported.

Two sources of model and data:
- `--run DIR`: a trained run (loaded and verified through `scalerec.rundir`); users are its
  dataset's real test users (drawn with replacement when `--users` exceeds them) and the catalog is
  its token table, extended to `--items` by re-drawing real item rows when the catalog is smaller.
- otherwise a fresh model of the named size (`--size`, real architecture, random weights), random
  token rows, and histories whose lengths follow Amazon's short tail (geometric, mean ~9, <= 50).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from scalerec.data.read.sequences import UserSequences

FIELDS = {"title": 32, "brand": 4, "categories": 8}


@dataclass
class World:
    model: torch.nn.Module
    tables: dict[str, torch.Tensor]  # [I+1, L] int32 per field, row 0 = padding
    histories: UserSequences
    targets: np.ndarray  # int64 [U]
    max_len: int
    source: str


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _extend_rows(table: dict[str, torch.Tensor], n_items: int, rng: np.random.Generator):
    """Catalog of exactly `n_items` items: the real rows, then real rows drawn again to fill up."""
    have = next(iter(table.values())).shape[0] - 1
    if n_items <= have:
        return {f: t[: n_items + 1] for f, t in table.items()}
    extra = torch.from_numpy(rng.integers(1, have + 1, size=n_items - have))
    return {f: torch.cat([t, t[extra]]) for f, t in table.items()}


def _from_run(args, device: torch.device, rng: np.random.Generator) -> World:
    from scalerec.data.read.sequences import load_sequences
    from scalerec.data.read.splits import leave_one_out
    from scalerec.rundir import load_run
    from scalerec.text.item_tokens import load_item_tokens

    loaded = load_run(args.run, device=device)
    if loaded.model.cfg.item_encoder != "text" or loaded.tokens_dir is None or loaded.dataset_dir is None:
        raise SystemExit(f"{args.run}: --model needs a text-encoder run with its dataset and token table")
    hist, targets = leave_one_out(load_sequences(loaded.dataset_dir)).test
    rows = rng.choice(hist.n_users, args.users, replace=args.users > hist.n_users)
    lengths = hist.lengths()[rows]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    idx = np.repeat(hist.offsets[rows] - offsets[:-1], lengths) + np.arange(offsets[-1])
    users = UserSequences(offsets, hist.items[idx], hist.n_items)
    tables = _extend_rows(load_item_tokens(loaded.tokens_dir).torch_tables(), args.items, rng)
    return World(loaded.model, tables, users, np.asarray(targets)[rows].astype(np.int64), loaded.max_len,
                 f"trained run {args.run}")


def _fresh(args, device: torch.device, rng: np.random.Generator) -> World:
    from scalerec.model import SequentialRecommender
    from scalerec.model.sizes import model_config

    cfg = model_config(args.size, vocab_size=30000, field_max_len=dict(FIELDS), max_len=50,
                       item_encoder="text", dropout=0.0)
    torch.manual_seed(args.seed)
    model = SequentialRecommender(cfg).to(device).eval()
    g = torch.Generator().manual_seed(args.seed)
    tables = {f: torch.randint(2, cfg.vocab_size, (args.items + 1, n), generator=g, dtype=torch.int32)
              for f, n in FIELDS.items()}
    for t in tables.values():
        t[0] = 0
    lengths = np.minimum(rng.geometric(1 / 9, size=args.users), 50)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = rng.integers(1, args.items + 1, size=int(offsets[-1])).astype(np.int32)
    targets = rng.integers(1, args.items + 1, size=args.users).astype(np.int64)
    return World(model, tables, UserSequences(offsets, items, args.items), targets, 50,
                 f"fresh {args.size} text model (random weights)")


def build_world(args, device: torch.device) -> World:
    rng = np.random.default_rng(args.seed)
    world = _from_run(args, device, rng) if args.run else _fresh(args, device, rng)
    world.model.set_item_table({f: t.to(device) for f, t in world.tables.items()})
    return world


@torch.no_grad()
def timed(world: World, args, device: torch.device, dtype: torch.dtype | None) -> tuple[dict, tuple]:
    """The timed window: encode users, encode items, rank exactly. Returns timings and outputs."""
    from scalerec.device import autocast_dtype
    from scalerec.eval.encode import item_vectors, user_vectors
    from scalerec.eval.ranking import full_rank

    amp = autocast_dtype(device)
    targets = torch.from_numpy(world.targets)
    _sync(device)
    t0 = time.perf_counter()
    users = user_vectors(world.model, world.histories, world.max_len, args.user_batch, device, amp)
    _sync(device)
    t1 = time.perf_counter()
    items = item_vectors(world.model, device, amp)
    _sync(device)
    t2 = time.perf_counter()
    ranks, _top = full_rank(users, items, targets, topk=args.topk, dtype=dtype,
                            chunk_users=args.chunk_users, chunk_items=args.chunk_items)
    _sync(device)
    t3 = time.perf_counter()
    times = {"user_encode_s": round(t1 - t0, 3), "item_encode_s": round(t2 - t1, 3),
             "rank_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3)}
    return times, (users, items, targets, ranks)


def fixed_order_ranks(users: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Reference ranks with every score summed in fp64 in the fixed order j = 0..d-1 (the order of
    `scalerec.eval.exact.dot64`): fp32 x fp32 products are exact in fp64 and the order is the same
    for every item, so equal vectors tie exactly. A BLAS matmul is no reference here: its summation
    order differs between tiles, and in fp32 its rounding alone flips near-ties."""
    items_t = items.double().T.contiguous()  # [d, I+1]
    out = []
    for u, t in zip(users.double(), targets.long(), strict=True):
        acc = torch.zeros(items_t.shape[1], dtype=torch.float64, device=items.device)
        for j in range(items_t.shape[0]):
            acc.addcmul_(items_t[j], u[j])
        r = acc[t].clone()
        acc[0] = float("-inf")
        acc[t] = float("-inf")
        out.append(int((acc >= r).sum()) + 1)
    return torch.tensor(out)


def exactness(users, items, targets, ranks, n: int) -> dict:
    """Ranks of the first `n` users vs the fixed-order fp64 reference (must agree 100%), and the
    agreement of plain bf16 and of an fp32 matmul with that reference."""
    from scalerec.eval.ranking import brute_force_rank

    n = min(n, len(targets))
    u, t = users[:n], targets[:n].to(users.device)
    ref = fixed_order_ranks(u, items.to(users.device), t).cpu()
    fp32 = brute_force_rank(u.cpu(), items.cpu(), t.cpu()).cpu()
    s = u.bfloat16().float() @ items.bfloat16().float().T
    rows = torch.arange(n, device=s.device)
    ts = s[rows, t.to(s.device)].clone()
    s[:, 0] = float("-inf")
    s[rows, t.to(s.device)] = float("-inf")
    naive = ((s >= ts[:, None]).sum(1) + 1).cpu()
    return {"checked_users": n, "rank_agreement_vs_fp64": float((ranks[:n].cpu() == ref).float().mean()),
            "plain_bf16_agreement_vs_fp64": float((naive == ref).float().mean()),
            "fp32_matmul_agreement_vs_fp64": float((fp32 == ref).float().mean())}
