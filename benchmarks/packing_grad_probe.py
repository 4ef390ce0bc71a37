"""Packed vs padded: the loss and gradients of one model on the same windows, per execution path.

Issue 24 item 1. On one H200 the Beauty text model trained packed ended 0.0031 NDCG@10 below the
padded runs (3 seeds each, same run), its training loss rising after ~15K steps, while a packed run on
the CPU (fp32, SDPA, eager) followed the GPU padded curve. Training curves take minutes to diverge;
this probe asks the mechanism directly, in seconds: take packed batches from the run's own training
stream, lay the same windows out padded (`scalerec.train.batches.unpack`), and compute the summed
loss and every parameter's gradient along each path the trainer can take:

    layout (packed | padded) × attention (Triton kernel | SDPA) × precision (bf16 | fp32) × compiled

against the reference "padded, SDPA, fp32, eager". First with dropout off (paths must agree to
numerical noise), then with the run's dropout on, where masks differ between layouts: gradients are
averaged over `--draws` dropout draws and compared with the reference's average, beside the noise
floor (the reference against itself over other draws). A path whose error is far above the floor
has a bias the training would follow.

    python benchmarks/packing_grad_probe.py --run runs/diag_packed_short/runs/beauty_text_ce_s0 \
        --device cuda --batches 4 --draws 32 [--init]

`--init` probes freshly initialised weights (same config) instead of the run's best ones. On the CPU
only the eager SDPA paths run, fp32 and bf16 autocast (the Triton kernel needs CUDA). Prints one JSON
line per (path, dropout) and a table with each path's error as a ratio to the noise floor.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from scalerec import device as dev
from scalerec.data.read.sequences import load_sequences
from scalerec.data.read.splits import leave_one_out
from scalerec.model.recommender import SequentialRecommender
from scalerec.model.transformer import CausalSelfAttention
from scalerec.rundir import load_run
from scalerec.text import load_item_tokens
from scalerec.train import checkpoint
from scalerec.train.batches import PackedBatches, unpack
from scalerec.train.objective import NextItemObjective, distinct_items
from scalerec.train.padded import Batch


@dataclasses.dataclass(frozen=True)
class StepPath:
    """One execution path of the training step."""

    layout: str  # "packed" | "padded"
    attention: str  # "kernel" | "sdpa"
    precision: str  # "bf16" | "fp32"
    compiled: bool

    @property
    def name(self) -> str:
        return f"{self.layout}/{self.attention}/{self.precision}/{'compiled' if self.compiled else 'eager'}"


REFERENCE = StepPath("padded", "sdpa", "fp32", False)


def paths(cuda: bool) -> list[StepPath]:
    """The reference first, then every path worth asking about on this device."""
    out = [REFERENCE, StepPath("packed", "sdpa", "fp32", False),
           StepPath("padded", "sdpa", "bf16", False), StepPath("packed", "sdpa", "bf16", False)]
    if cuda:
        for layout in ("padded", "packed"):
            out += [StepPath(layout, "kernel", "bf16", True), StepPath(layout, "kernel", "bf16", False),
                    StepPath(layout, "sdpa", "bf16", True)]
    return out


def set_attention(model: torch.nn.Module, kind: str) -> None:
    """Route every attention layer through the Triton kernel or SDPA (what `model.attention` picks
    at construction; the kernel is used only where it is supported, as in training)."""
    for m in model.modules():
        if isinstance(m, CausalSelfAttention):
            if kind == "kernel" and not m.short_kernel and not _kernel_loaded():
                raise SystemExit("the Triton kernel is not available here (CUDA build of torch needed)")
            m.short_kernel = kind == "kernel"


def _kernel_loaded() -> bool:
    from scalerec.model import short_attention

    if not short_attention.triton_available() or not torch.cuda.is_available():
        return False
    short_attention.load()
    return True


def set_dropout(model: torch.nn.Module, p: float) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = p
        if isinstance(m, CausalSelfAttention):
            m.dropout = p


def flat_grad(params: list[torch.nn.Parameter]) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).float().flatten()
                      for p in params])


def group_of(name: str) -> str:
    return name.split(".")[0] if not name.startswith("transformer.layers.") else ".".join(name.split(".")[:4])


def probe(model: SequentialRecommender, batches: list[Batch], device: torch.device, draws: int,
          dropout: float, fp32_logits: bool = True) -> list[dict[str, Any]]:
    """One record per (path, dropout setting): loss per target and gradient error vs the reference."""
    obj = NextItemObjective(model, "full", "all", fp32_logits=fp32_logits)
    params = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    sizes = [p.numel() for p in params]
    compiled: dict[str, Callable[..., torch.Tensor]] = {}
    # every (layout, attention, dropout) is its own graph, and the distinct-item count of each batch
    # one more: above the default limit of 8, Dynamo would quietly run the rest eagerly
    torch._dynamo.config.recompile_limit = 64
    model.train()

    # each layout's batches and their distinct items, built once (not per draw and path)
    laid = {"packed": batches, "padded": [unpack(b) for b in batches]}
    inputs = {layout: [(b, distinct_items(b.inputs, b.targets, None, packed=b.positions is not None))
                       for b in bs] for layout, bs in laid.items()}

    def grad_of(path: StepPath, seeds: range) -> tuple[torch.Tensor, float]:
        set_attention(model, path.attention)
        step = obj
        if path.compiled:
            key = path.name
            if key not in compiled:
                compiled[key] = torch.compile(obj)
            step = compiled[key]
        dtype = torch.bfloat16 if path.precision == "bf16" else None
        total, loss_sum, n_targets = None, 0.0, 0
        for seed in seeds:
            for batch, d in inputs[path.layout]:
                model.zero_grad(set_to_none=True)
                torch.manual_seed(seed)
                with dev.autocast(device, dtype):
                    loss = step(batch.inputs, batch.targets, None, d, batch.positions)
                loss.backward()
                g = flat_grad(params)
                total = g if total is None else total + g
                loss_sum += float(loss.detach())
                n_targets += batch.n_targets
        assert total is not None
        return total / n_targets, loss_sum / n_targets

    rows: list[dict[str, Any]] = []
    for p_drop in ([0.0] + ([dropout] if dropout > 0 else [])):
        set_dropout(model, p_drop)
        n = 1 if p_drop == 0 else draws
        ref, ref_loss = grad_of(REFERENCE, range(n))
        floor = None
        if p_drop > 0:  # the reference against itself over other draws: the noise of an n-draw mean
            other, _ = grad_of(REFERENCE, range(n, 2 * n))
            floor = float((other - ref).norm() / ref.norm())
        for path in paths(device.type == "cuda"):
            t0 = time.perf_counter()
            g, loss = grad_of(path, range(n))
            err = (g - ref).norm() / ref.norm()
            diff_sq: dict[str, float] = {}  # per parameter group: ||g - ref||², ||ref||²
            ref_sq: dict[str, float] = {}
            for name, part, part_ref in zip(names, g.split(sizes), ref.split(sizes), strict=True):
                grp = group_of(name)
                diff_sq[grp] = diff_sq.get(grp, 0.0) + float((part - part_ref).square().sum())
                ref_sq[grp] = ref_sq.get(grp, 0.0) + float(part_ref.square().sum())
            groups = {grp: round((diff_sq[grp] / max(ref_sq[grp], 1e-30)) ** 0.5, 6) for grp in diff_sq}
            rows.append({
                "event": "path", "path": path.name, "dropout": p_drop, "draws": n,
                "loss_per_target": loss, "ref_loss_per_target": ref_loss,
                "grad_rel_err": float(err), "noise_floor": floor,
                "err_over_floor": None if floor is None else float(err) / floor,
                "cosine": float(torch.nn.functional.cosine_similarity(g, ref, dim=0)),
                "group_rel_err": groups, "seconds": round(time.perf_counter() - t0, 2),
            })
            print(json.dumps(rows[-1]), flush=True)
    return rows


def load_model(run_dir: Path, device: torch.device, init: bool, state: bool = False
               ) -> tuple[SequentialRecommender, dict]:
    loaded = load_run(run_dir, device, allow_unfinished=True)
    model = loaded.model
    if state:  # the latest training state, e.g. a run stalled after its best step
        model.load_state_dict(checkpoint.load_state(run_dir)["model"])
    elif init:
        torch.manual_seed(0)
        model = SequentialRecommender(loaded.model.cfg).to(device)
        if loaded.model.cfg.has_text and loaded.tokens_dir is not None:
            model.set_item_table(load_item_tokens(loaded.tokens_dir).torch_tables())
    return model, loaded.config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a training run dir (its config names the data)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batches", type=int, default=4, help="packed batches from the run's training stream")
    ap.add_argument("--draws", type=int, default=32, help="dropout draws averaged per path")
    weights = ap.add_mutually_exclusive_group()  # the run's best model unless one of these
    weights.add_argument("--init", action="store_true",
                         help="freshly initialised weights instead of the run's")
    weights.add_argument("--state", action="store_true",
                         help="the weights of the run's state.pt (its latest step) instead of its best model")
    ap.add_argument("--logits", choices=["fp32", "autocast"], default="fp32",
                    help="the loss's logits matmul under bf16 autocast (train.logits_precision)")
    args = ap.parse_args()
    device = dev.pick_device(args.device)
    model, config = load_model(args.run, device, args.init, args.state)
    if model.cfg.item_encoder == "id" or config.get("train", {}).get("loss", "full") != "full":
        print("note: the probe uses full-softmax CE (the Beauty text recipe's loss)")
    data = config["data"]
    split = leave_one_out(load_sequences(data["dataset"]))
    units = int(config["train"]["batch_size"])
    seed = int(config.get("run", {}).get("seed", 0))
    max_len = int(data.get("max_len", 50))
    stream = PackedBatches(split.train, max_len, seed, units=units, device=device).batches()
    batches = [next(stream) for _ in range(args.batches)]
    head = {"event": "setup", "run": str(args.run), "init": args.init, "state": args.state,
            "device": str(device),
            "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
            "torch": torch.__version__,
            "rows_packed": [int(b.inputs.shape[0]) for b in batches],
            "rows_padded": [int(unpack(b).inputs.shape[0]) for b in batches],
            "targets": [b.n_targets for b in batches], "dropout": model.cfg.dropout, "logits": args.logits}
    print(json.dumps(head), flush=True)
    rows = probe(model, batches, device, args.draws, model.cfg.dropout, args.logits == "fp32")
    print(f"\n{'path':40s} {'dropout':>7s} {'loss/target':>11s} {'rel err':>9s} {'err/floor':>9s}")
    for r in rows:
        ratio = "" if r["err_over_floor"] is None else f"{r['err_over_floor']:9.2f}"
        print(f"{r['path']:40s} {r['dropout']:7.2f} {r['loss_per_target']:11.5f} "
              f"{r['grad_rel_err']:9.2e} {ratio:>9s}")


if __name__ == "__main__":
    main()
