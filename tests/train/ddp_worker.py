"""Entry point for the DDP tests: `torchrun --nproc_per_node 2 ddp_worker.py [--extend] key=value ...`."""

from __future__ import annotations

import sys

import torch

from scalerec.train import train
from scalerec.train.config import resolve_run_config

if __name__ == "__main__":
    torch.set_num_threads(1)
    extend = sys.argv[1] == "--extend"
    train(resolve_run_config(overrides=sys.argv[1 + extend:], size="tiny"), extend=extend)
