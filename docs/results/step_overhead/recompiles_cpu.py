"""Recompiles of the compiled train step over packed batches (tiny test world, CPU, id encoder).

TORCH_LOGS=recompiles PYTHONPATH=src python docs/results/step_overhead/recompiles_cpu.py
"""

import pathlib
import sys
import tempfile

import torch
from torch._dynamo.utils import counters

sys.path.insert(0, "tests/train")
from test_train_loop import tiny_cfg  # noqa: E402

from conftest import write_world  # noqa: E402
from scalerec.train import train  # noqa: E402

torch.set_num_threads(1)
with tempfile.TemporaryDirectory() as tmp:
    world = write_world(pathlib.Path(tmp) / "w")
    counters.clear()
    s = train(
        tiny_cfg(
            world,
            tmp,
            "c_id",
            "train.max_steps=30",
            "train.compile=true",
            "train.packing=on",
            "train.loss=full",
            "model.item_encoder=id",
            "eval.every_steps=10",
        )
    )
    print(
        {
            "encoder": "id",
            "steps": s.final["steps"],
            "epochs": round(s.final["epochs"], 2),
            "unique_graphs": counters["stats"]["unique_graphs"],
            "recompiles": dict(counters.get("recompiles", {})),
            "frames": dict(counters["frames"]),
        },
        flush=True,
    )
