"""Entry point for the DDP tests: `torchrun --nproc_per_node 2 ddp_worker.py [--extend] key=value ...`.

With `SCALEREC_TEST_SLOW_READER=1`, rank 1 waits 2 s before it reads any weights file, so a rank 0 that
moves the run dir while another rank still reads it fails every time, not once in a while."""

from __future__ import annotations

import os
import sys
import time

import safetensors.torch
import torch

from scalerec.train import train
from scalerec.train.config import resolve_run_config


def _slow_load_file(load_file):
    def wrapped(*args, **kwargs):
        time.sleep(2.0)
        return load_file(*args, **kwargs)

    return wrapped


if __name__ == "__main__":
    torch.set_num_threads(1)
    if os.environ.get("SCALEREC_TEST_SLOW_READER") == "1" and os.environ.get("RANK") == "1":
        safetensors.torch.load_file = _slow_load_file(safetensors.torch.load_file)
    extend = sys.argv[1] == "--extend"
    train(resolve_run_config(overrides=sys.argv[1 + extend:], size="tiny"), extend=extend)
