"""`evaluate_run`: a finished run dir → exact full-ranking metrics with CIs, beside most-popular.

One report per (run, split): the model's NDCG/HR/MRR@k over the whole catalog (leave-one-out, ties
pessimistic, seen items masked only on request), 95% bootstrap intervals over users, the
most-popular baseline on the same users and masking, and — clearly labelled and kept apart — the
sampled protocol (target vs 100 negatives) that older papers report. Written to
`<run>/eval.json` (or `eval_<split>[_masked].json` for other variants) atomically.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from scalerec.data.read.sequences import load_sequences
from scalerec.data.read.splits import leave_one_out
from scalerec.device import autocast_dtype, pick_device
from scalerec.errors import UserError
from scalerec.eval.baselines import most_popular_ranks, popularity_counts
from scalerec.eval.heldout import rank_heldout, subset
from scalerec.eval.metrics import DEFAULT_KS, metrics_with_ci
from scalerec.eval.ranking import full_rank
from scalerec.eval.sampled import sampled_metrics
from scalerec.io import write_json
from scalerec.rundir import LoadedRun, load_run, verify_dataset

if TYPE_CHECKING:
    pass

FORMAT_VERSION = 1
PROTOCOL = "full ranking over the whole catalog, leave-one-out, ties counted pessimistically"


def eval_filename(split: str, mask_seen: bool) -> str:
    """`eval.json` for the default report (test, unmasked), a distinct name for the others."""
    if split == "test" and not mask_seen:
        return "eval.json"
    return f"eval_{split}{'_masked' if mask_seen else ''}.json"


def _dataset_dir(loaded: LoadedRun, run_dir: Path, dataset: str | Path | None) -> Path:
    """The run's dataset dir (or `dataset`, when moved), checked against the hash in meta.json."""
    candidates = [dataset, loaded.config.get("data", {}).get("dataset"), loaded.meta.get("dataset_dir")]
    for c in candidates:
        if c and Path(c).is_dir():
            verify_dataset(loaded.meta, c)
            return Path(c)
    missing = candidates[1] or candidates[2]
    raise UserError(f"{run_dir}: its dataset dir {missing} was not found; pass --dataset")


def _split(dataset_dir: Path, split: str, max_users: int | None, seed: int):
    parts = leave_one_out(load_sequences(dataset_dir))
    histories, targets = parts.test if split == "test" else parts.valid
    histories, targets = subset(histories, targets, max_users, seed)
    return histories, np.asarray(targets, dtype=np.int64)


def evaluate_vectors(
    users: torch.Tensor,
    items: torch.Tensor,
    histories: Any,
    targets: np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
    mask_seen: bool = False,
    bootstrap: int = 1000,
    seed: int = 0,
    sampled_negatives: int = 100,
    ranks: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Model, most-popular and sampled metrics for given vectors (the library core of `evaluate_run`).

    `ranks` are the exact full-catalog ranks when already computed (`rank_heldout`), else ranked here.
    """
    exclude = histories if mask_seen else None
    t0 = time.perf_counter()
    if ranks is None:  # exact in any precision (bf16 scores are re-checked where they could tie)
        ranks = full_rank(users, items, torch.as_tensor(targets), exclude=exclude)
    t_rank = time.perf_counter() - t0
    n_items = items.shape[0] - 1
    pop = popularity_counts(histories, n_items)
    pop_ranks = most_popular_ranks(pop, targets, exclude)
    out: dict[str, Any] = {
        "model": metrics_with_ci(ranks, ks, n_boot=bootstrap, seed=seed),
        "most_popular": metrics_with_ci(pop_ranks, ks, n_boot=bootstrap, seed=seed),
        "rank_time_s": round(t_rank, 3),
    }
    if sampled_negatives > 0:
        out["sampled"] = {
            "note": f"target vs {sampled_negatives} sampled negatives; NOT comparable to full ranking",
            **sampled_metrics(users, items, targets, sampled_negatives, "uniform",
                              exclude=histories, seed=seed),
            **sampled_metrics(users, items, targets, sampled_negatives, "popularity", popularity=pop,
                              exclude=histories, seed=seed),
        }
    return out


def evaluate_run(
    run_dir: str | Path,
    split: Literal["test", "valid"] = "test",
    mask_seen: bool = False,
    ks: Sequence[int] = DEFAULT_KS,
    bootstrap: int = 1000,
    seed: int = 0,
    device: str = "auto",
    dataset: str | Path | None = None,
    max_users: int | None = None,
    sampled_negatives: int = 100,
    write: bool = True,
    allow_unfinished: bool = False,
) -> dict[str, Any]:
    """Evaluate the model of `run_dir` on its dataset's `split`; writes `<run_dir>/eval.json`.

    Users are encoded as training encoded them (the run's `train.precision`, `eval.batch_size`,
    `data.max_len`) and ranked by the same `rank_heldout` as validation, so the test metrics equal
    those in `final.json` for the same settings. An unfinished run is refused unless
    `allow_unfinished` (its report then says `"finished": false`).

    Returns `{"model": {metric: {"mean","low","high"}}, "most_popular": {...}, "sampled": {...},
    "split", "mask_seen", "n_users", "n_items", "protocol", "path", ...}`.
    """
    if split not in ("test", "valid"):
        raise UserError(f"split must be 'test' or 'valid', got {split!r}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run dir not found")
    dev = pick_device(device)
    loaded = load_run(run_dir, device=dev, allow_unfinished=allow_unfinished)
    data_dir = _dataset_dir(loaded, run_dir, dataset)
    histories, targets = _split(data_dir, split, max_users, seed)
    if histories.n_users == 0:
        raise UserError(f"{data_dir}: the {split} split has no users")
    t0 = time.perf_counter()
    held = rank_heldout(loaded.model, histories, targets, loaded.max_len, loaded.eval_batch_size, dev,
                        autocast_dtype(dev, loaded.precision), mask_seen)
    t_encode_rank = time.perf_counter() - t0
    report: dict[str, Any] = {
        "format_version": FORMAT_VERSION, "run_dir": str(run_dir), "dataset": str(data_dir),
        "split": split, "mask_seen": mask_seen, "protocol": PROTOCOL, "ks": list(ks),
        "n_users": int(histories.n_users), "n_items": int(held.items.shape[0] - 1),
        "bootstrap": {"n_boot": bootstrap, "level": 0.95, "seed": seed, "unit": "user"},
        "device": str(dev), "encode_rank_time_s": round(t_encode_rank, 3), "finished": loaded.finished,
    }
    report.update(evaluate_vectors(held.users, held.items, histories, targets, ks, mask_seen, bootstrap,
                                   seed, sampled_negatives, ranks=held.ranks))
    if write:
        path = run_dir / eval_filename(split, mask_seen)
        report["path"] = str(path)
        write_json(path, report)
    return report
