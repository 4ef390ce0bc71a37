"""CPU training throughput of our `tiny` config against RecBole's SASRec on ml-100k, in one run.

Issue 10's bar: a tiny config trains >= 3x faster per target than RecBole's SASRec with the same
layers, hidden size and max length on ml-100k, both on the same cores (2 by default).

Both sides train the same model shape: the `tiny` ladder size (2 layers, hidden 32, 2 heads,
FFN 128), item-ID embeddings, max length 50, batch 128 sequences, dropout 0.1, full-catalog
softmax cross-entropy, fp32, eager, on the same training split (leave-one-out: each user's last two
items held out; 97,171 training targets either way).

* RecBole 1.2.1 `SASRec` (`loss_type: CE`, Adam) runs in its own virtual environment (default
  `.venv-recbole` in the repo root, created on first use: RecBole needs numpy<2, pandas<2.3,
  scipy<1.14, setuptools<70, and is a benchmark-only dependency) as a worker subprocess that loads
  ml-100k once (atomic files from ../shared/data/movielens_100k_recbole, decompressed into a temp
  dir) and then times `Trainer._train_epoch` — RecBole's own training loop, data loader included —
  over a fixed number of batches. Every prefix of a user's sequence is one sample with one target.
* Ours prepares the same files with `scalerec.data.build.prepare.prepare` into a temp dir and trains through
  the real training runtime (`scalerec.train.setup.setup` + `train_step`, as in
  benchmarks/train_throughput.py): windows of up to 50 items, every position a target, AdamW with
  gradient clipping 1.0 (our recipe's default; RecBole's default has none).

Data loading, model building and evaluation are outside the timed windows. The two sides alternate
for `--rounds` rounds (these machines are noisy; the idle side blocks on a pipe), each side warmed
up first. Prints one JSON line per timed window, one summary line per side (targets/s over all
rounds, seconds, config) and a ratio line ours/recbole, plus the 1-minute load average before and
after.

    python benchmarks/recbole_cpu.py                    # 2 cores, ~3.5 min (+ ~1 min once: the venv, 1.4 GB)
    python benchmarks/recbole_cpu.py --rounds 1 --recbole-batches 100 --ours-steps 5   # smoke test
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ML100K = SHARED / "movielens_100k_recbole"
RECBOLE_PINS = [
    "recbole==1.2.1",
    "numpy<2",
    "pandas<2.3",
    "scipy<1.14",
    "setuptools<70",
]
# What recbole 1.2.1 imports to build a dataset, SASRec and Trainer (ray, thop, psutil, plotly and
# tabulate are only imported by hyper-parameter tuning / quick_start / FLOP counting, not used here).
RECBOLE_RUNTIME = [
    "scikit-learn",
    "pyyaml",
    "tqdm",
    "colorlog==4.7.2",
    "colorama==0.4.4",
    "tensorboard",
    "texttable",
]
# torch's own requirements (torch is installed --no-deps: its wheel asks for setuptools>=77, which
# RecBole's stack cannot have; setuptools is not used by torch at run time)
TORCH_DEPS = [
    "filelock",
    "typing-extensions>=4.10",
    "sympy>=1.13.3",
    "networkx>=2.5.1",
    "jinja2",
    "fsspec>=0.8.5",
]
TORCH_PIN = "torch==2.13.0"  # the CPU build from the local wheel dir; never unpinned (CUDA build)


# ------------------------------------------------------------------------------------------------
# RecBole environment


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_recbole_venv(venv: Path) -> Path:
    """Python of a venv holding recbole 1.2.1 (created with this interpreter's base Python)."""
    py = venv_python(venv)
    probe = [str(py), "-c", "import recbole, torch; assert recbole.__version__ == '1.2.1'"]
    if py.is_file() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    base = getattr(sys, "_base_executable", sys.executable)
    log(f"creating the RecBole venv at {venv} with {base}")
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--no-deps", TORCH_PIN, RECBOLE_PINS[0]], check=True)
    subprocess.run([*pip, *TORCH_DEPS, *RECBOLE_PINS[1:], *RECBOLE_RUNTIME], check=True)
    subprocess.run(probe, check=True)
    return py


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# RecBole worker (runs inside the RecBole venv: stdlib + recbole + torch only)


def recbole_config(args: argparse.Namespace, data_path: Path, tmp: Path) -> dict[str, Any]:
    """RecBole config of the SASRec run: the `tiny` shape, CE, no filtering, LS split by time."""
    return {
        "data_path": str(data_path),
        "checkpoint_dir": str(tmp / "saved"),
        "use_gpu": False,
        "seed": 0,
        "reproducibility": True,
        "show_progress": False,
        "state": "WARNING",
        "worker": 0,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        "n_layers": args.layers,
        "n_heads": args.heads,
        "hidden_size": args.hidden,
        "inner_size": args.ffn,
        "hidden_dropout_prob": args.dropout,
        "attn_dropout_prob": args.dropout,
        "hidden_act": "gelu",
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "train_batch_size": args.batch,
        "learner": "adam",
        "learning_rate": 1e-3,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
    }


class Take:
    """`n` batches of a RecBole train loader (restarting it at the end of an epoch); counts targets."""

    shuffle = False

    def __init__(self, loader: Any) -> None:
        self.loader, self.it, self.n, self.targets = loader, iter(loader), 0, 0

    def __iter__(self) -> Any:
        for _ in range(self.n):
            try:
                batch = next(self.it)
            except StopIteration:
                self.it = iter(self.loader)
                batch = next(self.it)
            self.targets += len(batch)  # one sample = one prefix = one target
            yield batch


def worker(spec: dict[str, Any]) -> None:
    """Load ml-100k into RecBole once, then time `run N` requests read from stdin."""
    import torch

    torch.set_num_threads(spec["threads"])
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    sys.argv = sys.argv[:1]  # RecBole's Config parses the command line too
    t0 = time.perf_counter()
    config = Config(model="SASRec", dataset="ml-100k", config_dict=spec["config"])
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    model = SASRec(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    take = Take(train_data)
    reply(
        {
            "ready": True,
            "load_s": time.perf_counter() - t0,
            "train_samples": len(train_data.dataset),
            "n_items": dataset.item_num,
            "params": sum(p.numel() for p in model.parameters()),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "affinity": sorted(os.sched_getaffinity(0)),
        }
    )
    for epoch, line in enumerate(sys.stdin):
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        take.n, take.targets = int(cmd[1]), 0
        t0 = time.perf_counter()
        loss = trainer._train_epoch(take, epoch)
        secs = time.perf_counter() - t0
        reply({"batches": take.n, "targets": take.targets, "seconds": secs, "loss": loss / max(1, take.n)})


def reply(row: dict[str, Any]) -> None:
    print("@@" + json.dumps(row), flush=True)


class RecboleProc:
    """The worker subprocess, driven over a pipe (idle while our side runs)."""

    def __init__(self, py: Path, spec: dict[str, Any], cwd: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "MKL_NUM_THREADS": str(spec["threads"])}
        env.pop("PYTHONPATH", None)
        env["PYTHONWARNINGS"] = "ignore::FutureWarning"  # pandas / torch.cuda.amp deprecations in RecBole
        self.proc = subprocess.Popen(
            [str(py), str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        raise RuntimeError(f"RecBole worker exited with {self.proc.wait()}")

    def run(self, batches: int) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"run {batches}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ------------------------------------------------------------------------------------------------
# our side (the scalerec venv)


def ours_runtime(args: argparse.Namespace, tmp: Path) -> Any:
    """Prepared ml-100k + the real training runtime of the tiny config, and a step runner."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from accuracy import prepare_dataset
    from scalerec.train.config import resolve_run_config
    from scalerec.train.setup import setup
    from train_throughput import step_runner

    data = prepare_dataset("ml100k", tmp)
    over = [
        f"data.dataset={data}",
        f"data.max_len={args.max_len}",
        f"run.out={tmp / 'runs'}",
        "run.name=tiny-ml100k",
        "run.tracking_uri=off",
        "run.progress=false",
        "run.device=cpu",
        "model.item_encoder=id",
        f"model.n_layers={args.layers}",
        f"model.d_model={args.hidden}",
        f"model.n_heads={args.heads}",
        f"model.d_ffn={args.ffn}",
        f"model.dropout={args.dropout}",
        "train.loss=full",
        "train.targets=all",
        f"train.batch_size={args.batch}",
        "train.precision=fp32",
        "train.compile=false",
        "train.max_steps=1000000",
    ]
    cfg = resolve_run_config(overrides=over, size=args.size, recipe="default")
    rt = setup(cfg, resume=False)
    return rt, step_runner(rt)


def ours_timed(run: Any, steps: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    seen = run(steps)
    secs = time.perf_counter() - t0
    return {"steps": steps, "targets": seen, "seconds": secs}


# ------------------------------------------------------------------------------------------------


def emit(row: dict[str, Any]) -> None:
    print(json.dumps({"bench": "recbole_cpu", **row}), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from_size = {"layers": 2, "hidden": 32, "heads": 2, "ffn": 128}
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--venv", type=Path, default=ROOT / ".venv-recbole", help="RecBole's virtual environment")
    p.add_argument("--threads", type=int, default=2, help="torch threads of each side")
    p.add_argument(
        "--cores", help="CPU ids both sides are pinned to, e.g. 0,1 (default: the first --threads)"
    )
    p.add_argument("--size", default="tiny", help="our ladder size (sets layers/hidden/heads/FFN of both)")
    p.add_argument("--max-len", type=int, default=50, help="max sequence length (MAX_ITEM_LIST_LENGTH)")
    p.add_argument("--batch", type=int, default=128, help="sequences per batch, both sides")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--rounds", type=int, default=3, help="alternations recbole -> ours")
    p.add_argument("--recbole-batches", type=int, default=250, help="timed RecBole batches per round")
    p.add_argument("--recbole-warmup", type=int, default=20)
    p.add_argument("--ours-steps", type=int, default=60, help="timed optimizer steps of ours per round")
    p.add_argument("--ours-warmup", type=int, default=3)
    a = p.parse_args(argv)
    if a.worker is None:
        from scalerec.model.sizes import SIZES

        s = SIZES[a.size]
        from_size = {
            "layers": s["n_layers"],
            "hidden": s["d_model"],
            "heads": s["n_heads"],
            "ffn": s["d_ffn"],
        }
    for k, v in from_size.items():
        setattr(a, k, v)
    return a


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        worker(json.loads(args.worker))
        return
    avail = sorted(os.sched_getaffinity(0))
    cores = [int(c) for c in args.cores.split(",")] if args.cores else avail[: args.threads]
    os.sched_setaffinity(0, cores)  # the RecBole worker inherits it
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    py = ensure_recbole_venv(args.venv)
    shape = {
        "size": args.size,
        "layers": args.layers,
        "hidden": args.hidden,
        "heads": args.heads,
        "ffn": args.ffn,
        "max_len": args.max_len,
        "batch": args.batch,
        "dropout": args.dropout,
        "loss": "full-softmax CE",
        "threads": args.threads,
        "cores": cores,
    }
    with tempfile.TemporaryDirectory(prefix="scalerec-recbole-") as tmp_s:
        tmp = Path(tmp_s)
        data_path = tmp / "recbole" / "data"
        (data_path / "ml-100k").mkdir(parents=True)
        with (
            gzip.open(ML100K / "ml-100k.inter.gz", "rb") as src,
            open(data_path / "ml-100k" / "ml-100k.inter", "wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
        spec = {"threads": args.threads, "config": recbole_config(args, data_path, tmp / "recbole")}
        t0 = time.perf_counter()
        rb = RecboleProc(py, spec, tmp / "recbole")
        emit({"kind": "setup", "side": "recbole", **rb.info, "setup_s": time.perf_counter() - t0})
        try:
            t0 = time.perf_counter()
            rt, run = ours_runtime(args, tmp / "ours")
            emit(
                {
                    "kind": "setup",
                    "side": "ours",
                    "train_targets_per_epoch": rt.batches.targets_per_epoch(),
                    "batches_per_epoch": len(rt.batches),
                    "n_items": rt.split.train.n_items,
                    "params": sum(p.numel() for p in rt.model.parameters()),
                    "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "affinity": sorted(os.sched_getaffinity(0)),
                    "setup_s": time.perf_counter() - t0,
                }
            )
            rb.run(args.recbole_warmup)
            run(args.ours_warmup)
            tot = {"recbole": [0, 0.0], "ours": [0, 0.0]}
            for r in range(args.rounds):
                for side in ("recbole", "ours"):
                    row = (
                        rb.run(args.recbole_batches)
                        if side == "recbole"
                        else ours_timed(run, args.ours_steps)
                    )
                    tot[side][0] += row["targets"]
                    tot[side][1] += row["seconds"]
                    emit(
                        {
                            "kind": "window",
                            "side": side,
                            "round": r,
                            **row,
                            "targets_per_s": row["targets"] / row["seconds"],
                        }
                    )
        finally:
            rb.close()
    rates = {}
    for side, (targets, secs) in tot.items():
        rates[side] = targets / secs
        impl = "recbole 1.2.1 SASRec" if side == "recbole" else "scalerec (real training runtime)"
        emit(
            {
                "kind": "summary",
                "side": side,
                "impl": impl,
                "targets_per_s": rates[side],
                "targets": targets,
                "seconds": secs,
                "config": shape,
            }
        )
    emit(
        {
            "kind": "ratio",
            "ours_over_recbole": rates["ours"] / rates["recbole"],
            "bar": 3.0,
            "met": rates["ours"] / rates["recbole"] >= 3.0,
            "load1_before": load_before,
            "load1_after": os.getloadavg()[0],
            "cpus_online": os.cpu_count(),
        }
    )


if __name__ == "__main__":
    main()
