"""Logit scale of the CPU bf16 packed run: best weights (step 20,000) against its stalled state (step 26,000).

Full-softmax logits are `hidden @ item_vectors.T`, computed in bf16 under autocast. bf16 keeps 8
significant bits, so a logit near 133 is stored in steps of 1.0 and one near 50 in steps of 0.25, while
what the loss reads is the spread across items. Run from the repository root, with the run dir of the
bf16 continuation (30 MB, not committed):

    PYTHONPATH=src:benchmarks python docs/results/accuracy/cpu_2026-12-05_packing_bf16/logit_scale.py RUN_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import packing_grad_probe as probe
from scalerec.data.read.sequences import load_sequences
from scalerec.data.read.splits import leave_one_out
from scalerec.train.batches import PackedBatches


def main() -> None:
    run, device = Path(sys.argv[1]), torch.device("cpu")
    for latest in (False, True):
        model, cfg = probe.load_model(run, device, False, latest)
        model.eval()
        split = leave_one_out(load_sequences(cfg["data"]["dataset"]))
        batch = next(PackedBatches(split.train, 50, 0, units=128, device=device).batches())
        with torch.no_grad():  # fp32: the scale itself, not its rounding
            items = model.all_item_vectors()
            real = batch.targets > 0
            hidden = model(batch.inputs, positions=batch.positions)[real]
            logits = hidden @ items.T
            target = logits.gather(1, batch.targets[real][:, None])
        print(f"{'latest state' if latest else 'best (20K)':12s}  item |v| {items.norm(dim=1).mean():.2f}  "
              f"hidden |h| {hidden.norm(dim=1).mean():.2f}  max logit {logits.max(1).values.mean():.1f}  "
              f"target logit {target.mean():.1f}  logit sd across items {logits.std(1).mean():.2f}")


if __name__ == "__main__":
    main()
