"""`data.train_fraction`: nested training users, whole eval set and catalog, popularity recounted.

The world here gives every interaction its own item id (item = offset + 1), so an item names one
transition of one user and what a run trains on can be counted exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from train_world_files import write_token_table

from scalerec.data.read.fractions import fraction_rows, keep_fraction, training_targets
from scalerec.data.read.sequences import load_sequences
from scalerec.data.read.splits import leave_one_out
from scalerec.train import build, train
from scalerec.train.batches import PackedBatches, windows
from scalerec.train.config import resolve_run_config
from scalerec.train.padded import TrainBatches
from scalerec.train.setup import setup

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_USERS, VOCAB = 40, 30


def _lengths() -> np.ndarray:
    """2..13 items: users of 2 or 3 have no training target (valid/test only), some need 2 windows."""
    return 2 + np.arange(N_USERS) % 12


def _write(root: Path) -> tuple[Path, Path]:
    lengths = _lengths()
    data, tokens = root / "data", root / "tokens"
    data.mkdir(parents=True)
    tokens.mkdir(parents=True)
    n = int(lengths.sum())
    users = np.repeat(np.arange(1, N_USERS + 1), lengths)
    table = pa.table(
        {
            "user_id": pa.array(users, pa.int32()),
            "item_id": pa.array(np.arange(1, n + 1), pa.int32()),
            "timestamp": pa.array(np.arange(n), pa.int64()),
        }
    )
    pq.write_table(table, data / "interactions.parquet")
    (data / "card.json").write_text(json.dumps({"format_version": 1, "n_users": N_USERS, "n_items": n}))
    ids = np.arange(n + 1)
    title = np.stack([2 + ids % 20, 2 + (ids // 3) % 20, np.zeros_like(ids)], 1).astype(np.int32)
    brand = np.stack([2 + ids % 5, np.zeros_like(ids)], 1).astype(np.int32)
    title[0], brand[0] = 0, 0
    write_token_table(tokens, data, VOCAB, title, brand)
    return data, tokens


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, Path]:
    return _write(tmp_path_factory.mktemp("fraction_world"))


def _expected(fraction: float) -> tuple[np.ndarray, list[int], list[int]]:
    """(kept 0-based users, their training items, their training targets), counted by hand:
    user u's items are offsets[u]+1 … offsets[u+1]; training keeps all but the last 2 when ≥ 2 remain."""
    lengths = _lengths()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    n_kept = max(1, math.ceil(fraction * N_USERS))
    kept = np.sort(np.random.default_rng(20240501).permutation(N_USERS)[:n_kept])
    items, targets = [], []
    for u in kept:
        n_train = lengths[u] - 2
        if n_train >= 2:
            seq = list(range(offsets[u] + 1, offsets[u] + n_train + 1))
            items += seq
            targets += seq[1:]
    return kept, items, targets


def _cfg(world, out: Path, name: str, *extra: str, encoder: str = "text"):
    data, tokens = world
    sets = [
        f"data.dataset={data}",
        f"data.tokens={tokens}",
        "data.max_len=4",
        f"run.out={out}",
        f"run.name={name}",
        "run.tracking_uri=off",
        "run.progress=false",
        "train.batch_size=8",
        "train.negatives=16",
        "train.loss=sampled",
        "model.dropout=0.0",
        f"model.item_encoder={encoder}",
        "eval.every_steps=1000",
        "train.precision=fp32",
    ]
    return resolve_run_config(overrides=sets + list(extra), size="tiny")


def _setup(cfg):
    rt = setup(cfg, resume=False)
    assert rt.claim is not None
    rt.claim.release()
    return rt


def test_fraction_rows_are_nested_sized_and_shared_with_transfer() -> None:
    from scalerec.transfer.domain import fraction_rows as transfer_rows

    for n in (1, 7, 100, 1000):
        small, mid, full = (fraction_rows(n, f) for f in (0.1, 0.3, 1.0))
        assert set(small) <= set(mid) <= set(full) and list(full) == list(range(n))
        assert len(small) == max(1, math.ceil(0.1 * n)) and len(mid) == max(1, math.ceil(0.3 * n))
        assert list(small) == sorted(small)
    assert transfer_rows is fraction_rows  # the transfer study's learning curves use the same users
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        fraction_rows(10, 0.0)


@pytest.mark.parametrize("encoder", ["text", "id", "hybrid"])
def test_setup_trains_on_kept_users_only_and_evaluates_on_all(world, tmp_path, encoder) -> None:
    whole = leave_one_out(load_sequences(world[0]))
    rt = _setup(_cfg(world, tmp_path, "a", "data.train_fraction=0.3", encoder=encoder))
    kept, items, targets = _expected(0.3)
    assert len(kept) == 12
    assert sorted(rt.split.train.items.tolist()) == items  # only kept users' training items
    for got, want in ((rt.split.valid, whole.valid), (rt.split.test, whole.test)):
        assert np.array_equal(got[1], want[1]) and np.array_equal(got[0].items, want[0].items)
    assert np.array_equal(rt.split.valid_users, whole.valid_users)
    assert rt.split.train.n_items == whole.train.n_items == int(_lengths().sum())  # the whole catalog
    if encoder != "text":  # (a text model takes its catalog from the token table)
        assert rt.model.cfg.n_items == whole.train.n_items
    assert rt.train_data == {
        "train_fraction": 0.3,
        "train_users_kept": int((_lengths()[kept] >= 4).sum()),
        "unique_train_targets": len(targets),
    }


@pytest.mark.parametrize("packing", ["on", "off"])
def test_one_epoch_holds_exactly_the_kept_users_targets(world, tmp_path, packing) -> None:
    _, _, targets = _expected(0.5)
    kept = keep_fraction(leave_one_out(load_sequences(world[0])).train, 0.5)
    n_units = len(windows(kept, 4)[1])  # one batch = one epoch, in both layouts
    rt = _setup(
        _cfg(
            world,
            tmp_path,
            packing,
            "data.train_fraction=0.5",
            f"train.packing={packing}",
            f"train.batch_size={n_units}",
        )
    )
    assert isinstance(rt.batches, PackedBatches if packing == "on" else TrainBatches)
    batch = next(rt.batches.batches())
    got = batch.targets[batch.targets > 0].tolist()
    assert sorted(got) == targets and batch.n_targets == len(targets) == rt.batches.targets_per_epoch()


def test_popularity_is_counted_on_the_kept_users(world, tmp_path) -> None:
    """Sampler weights are (count + 1): 2 for an item in a kept user's training items, 1 for one of a
    dropped user's (counted with the whole split it would be 2)."""
    _, items, _ = _expected(0.25)
    whole = leave_one_out(load_sequences(world[0])).train
    dropped = sorted(set(whole.items.tolist()) - set(items))
    assert dropped
    rt = _setup(_cfg(world, tmp_path, "p", "data.train_fraction=0.25", "train.sampler=popularity"))
    logp = rt.sampler.logp
    assert torch.allclose(logp[items], logp[items[0]]) and torch.allclose(logp[dropped], logp[dropped[0]])
    assert float(logp[items[0]] - logp[dropped[0]]) == pytest.approx(math.log(2.0), abs=1e-5)


def test_packed_and_padded_training_agree_with_a_fraction(world, tmp_path) -> None:
    """The trainer's first-step loss (popularity negatives from the kept users, same draw) is the same
    on packed and on padded batches of the same kept windows."""
    kept = keep_fraction(leave_one_out(load_sequences(world[0])).train, 0.5)
    n_units = len(windows(kept, 4)[1])
    losses = []
    for packing in ("on", "off"):
        cfg = _cfg(
            world,
            tmp_path,
            f"l{packing}",
            "data.train_fraction=0.5",
            f"train.packing={packing}",
            f"train.batch_size={n_units}",
            "train.max_steps=1",
            "train.log_every=1",
        )
        run = train(cfg).run_dir
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        losses.append(next(x["train/loss"] for x in lines if "train/loss" in x))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_final_json_records_fraction_users_and_d(world, tmp_path) -> None:
    kept, _, targets = _expected(0.25)
    final = train(
        _cfg(
            world,
            tmp_path,
            "f",
            "data.train_fraction=0.25",
            "train.epochs=3",
            "train.batch_size=4",
            "train.packing=off",
        )
    ).final
    assert final["train_fraction"] == 0.25
    assert final["train_users_kept"] == int((_lengths()[kept] >= 4).sum())
    assert (
        final["unique_train_targets"]
        == len(targets)
        == training_targets(keep_fraction(leave_one_out(load_sequences(world[0])).train, 0.25))
    )
    assert final["targets_seen"] == 3 * len(targets) and final["epochs"] == pytest.approx(3.0)


def test_run_id_ignores_a_whole_split_and_names_a_fraction(world, tmp_path) -> None:
    plain = _cfg(world, tmp_path, "x")
    assert plain.data.train_fraction == 1.0
    whole = _cfg(world, tmp_path, "x", "data.train_fraction=1.0")
    part = _cfg(world, tmp_path, "x", "data.train_fraction=0.5")
    assert build.run_id(whole) == build.run_id(plain) != build.run_id(part)
