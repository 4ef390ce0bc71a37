"""`SweepSpec.train_fractions`: a data axis of nested training users over ONE dataset.

Planning (labels, one dataset, counts, ids), refusals, the D column of a real (tiny, CPU) sweep,
and the run ids of specs without fractions, pinned to the values they had before the field existed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalerec.data.read.fractions import fraction_rows
from scalerec.errors import UserError
from scalerec.scaling.spec import SweepSpec, load_spec, plan_runs
from scalerec.scaling.sweep import read_results, run_sweep

N_USERS = 48


def _lengths() -> np.ndarray:
    return 2 + np.arange(N_USERS) % 10  # 2..11 items; 2 and 3 give no training target


def _dataset(root: Path) -> Path:
    """Every interaction its own item (id = offset + 1): training targets can be counted by hand."""
    lengths = _lengths()
    n = int(lengths.sum())
    root.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(np.repeat(np.arange(1, N_USERS + 1), lengths), pa.int32()),
                "item_id": pa.array(np.arange(1, n + 1), pa.int32()),
                "timestamp": pa.array(np.arange(n), pa.int64()),
            }
        ),
        root / "interactions.parquet",
    )
    card = {"format_version": 1, "n_users": N_USERS, "n_items": n, "n_interactions": n}
    (root / "card.json").write_text(json.dumps(card))
    return root


def _hand_d(fraction: float) -> int:
    """Training targets of the kept users: n − 3 per user of n ≥ 4 items (train = all but 2)."""
    n_kept = max(1, math.ceil(fraction * N_USERS))
    kept = np.sort(np.random.default_rng(20240501).permutation(N_USERS)[:n_kept])
    return int(np.maximum(_lengths()[kept] - 3, 0).sum())


def _spec(ds: Path, **kw) -> SweepSpec:
    base = dict(
        dataset=str(ds),
        sizes=["tiny", "xs"],
        seeds=[0],
        epochs=2.0,
        train_fractions=[0.1, 0.5, 1.0],
        base={"model": {"item_encoder": "id"}},
    )
    return SweepSpec(**{**base, **kw})


def test_plan_has_one_dataset_a_label_per_fraction_and_the_kept_counts(tmp_path) -> None:
    ds = _dataset(tmp_path / "ds")
    spec = _spec(
        ds,
        encoders=["text", "id"],
        tokens=str(tmp_path / "tok_{subset}"),
        lr_search=[0.5, 1.0],
        lr_search_per_encoder={"text": [0.5, 1.0, 2.0]},
        seeds=[0, 1],
        extra_seeds=[2],
        extra_seed_sizes=["tiny"],
    )
    runs = plan_runs(spec, tmp_path / "out")
    labels = {r.subset for r in runs}
    assert labels == {"f0.1", "f0.5", "f1"}
    assert {r.dataset_dir for r in runs} == {str(ds)}  # one catalog, one set of eval users
    assert {r.cfg.data.tokens for r in runs} == {str(tmp_path / "tok_full")}  # "{subset}": the dataset
    for r in runs:
        f = {"f0.1": 0.1, "f0.5": 0.5, "f1": 1.0}[r.subset]
        rows = fraction_rows(N_USERS, f)
        assert r.cfg.data.train_fraction == f
        assert (r.n_users, r.n_interactions) == (len(rows), int(_lengths()[rows].sum()))
    # each fraction: 2 sizes × (text 3 LRs × 2 seeds + id 2 LRs × 2 seeds) + tiny's third seed at x1
    assert sum(r.subset == "f0.1" for r in runs) == 2 * (6 + 4) + 2
    assert len({r.run_id for r in runs}) == len(runs)


def test_the_whole_fraction_is_the_plain_run_on_the_dataset(tmp_path) -> None:
    ds = _dataset(tmp_path / "ds")
    whole = [r for r in plan_runs(_spec(ds), tmp_path / "out") if r.subset == "f1"]
    plain = plan_runs(_spec(ds, train_fractions=[]), tmp_path / "out")
    assert [r.run_id for r in whole] == [r.run_id for r in plain] and {r.subset for r in plain} == {"full"}


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"branches": [0.5], "max_steps": 10, "epochs": None}, "two D designs"),
        ({"subsets": ["1K", "4K"]}, "ONE dataset"),
        ({"world": {"n_items": 10}}, "world"),
        ({"train_fractions": [0.5, 0.5]}, "distinct"),
        ({"train_fractions": [0.0, 1.0]}, r"\(0, 1\]"),
        ({"train_fractions": [1.5]}, r"\(0, 1\]"),
    ],
)
def test_refused_combinations(tmp_path, kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        _spec(tmp_path, **kw)


def test_a_spec_file_with_branches_and_fractions_is_a_user_error(tmp_path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('dataset = "ds"\nmax_steps = 8\nbranches = [0.5]\ntrain_fractions = [0.1, 1.0]\n')
    with pytest.raises(UserError, match="two D designs"):
        load_spec(path)


def test_real_sweep_d_is_each_fractions_training_targets(tmp_path) -> None:
    """Tiny runs on CPU: D = the fraction's training targets (counted by hand), epochs recorded apart,
    every run scored on the same validation users; the LR winner is picked per fraction."""
    ds = _dataset(tmp_path / "ds")
    spec = _spec(
        ds,
        sizes=["tiny"],
        train_fractions=[0.25, 1.0],
        lr_search=[0.5, 1.0],
        device="cpu",
        base={
            "model": {"item_encoder": "id", "dropout": 0.0},
            "train": {"batch_size": 8, "packing": "off"},
            "eval": {"patience": 0},
            "run": {"tracking_uri": "off"},
        },
    )
    rows = run_sweep(spec, tmp_path / "out")
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    for r in rows:
        f = {"f0.25": 0.25, "f1": 1.0}[r["subset"]]
        assert r["unique_targets"] == _hand_d(f) and r["train_fraction"] == f
        assert r["epochs"] == pytest.approx(2.0) and r["targets_seen"] == 2 * _hand_d(f)
    assert _hand_d(0.25) < _hand_d(1.0)
    table = read_results(tmp_path / "out")
    assert sorted(r["subset"] for r in table if r["lr_selected"]) == ["f0.25", "f1"]
    finals = [json.loads((tmp_path / "out" / "runs" / r["run_id"] / "final.json").read_text()) for r in rows]
    assert {f["train_users_kept"] for f in finals} == {
        int((_lengths()[fraction_rows(N_USERS, f)] >= 4).sum()) for f in (0.25, 1.0)
    }


# Ids of a spec without train_fractions, computed by the code before the field existed (commit
# 4840ad1): adding a field must not rename finished runs.
GOLDEN_IDS = {
    ("text", "tiny", 0, 0.0005): "defd98cdf11e",
    ("text", "tiny", 1, 0.002): "07931cea67da",
    ("text", "xs", 0, 0.001): "1142be5673a6",
    ("id", "tiny", 1, 0.0005): "2b8eab4971ad",
    ("id", "xs", 0, 0.002): "3c3cdd809cc9",
    ("id", "xs", 1, 0.001): "11b101607947",
}


def test_run_ids_of_specs_without_fractions_are_unchanged(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ds").mkdir()
    card = {"n_interactions": 1000, "n_users": 100, "n_items": 50}
    (tmp_path / "ds" / "card.json").write_text(json.dumps(card))
    spec = SweepSpec(
        dataset="ds",
        sizes=["tiny", "xs"],
        subsets=["full"],
        seeds=[0, 1],
        epochs=3.0,
        encoders=["text", "id"],
        lr_search=[0.5, 1.0, 2.0],
        tokens="tok",
        base={"eval": {"patience": 2}},
    )
    ids = {(r.encoder, r.size, r.seed, round(r.lr, 6)): r.run_id for r in plan_runs(spec, "out")}
    assert len(ids) == 24
    assert {k: ids[k] for k in GOLDEN_IDS} == GOLDEN_IDS


def test_dry_run_estimates_each_fraction_on_its_kept_users(tmp_path, monkeypatch) -> None:
    from scalerec.scaling.estimate import estimate_runs

    monkeypatch.setenv("SCALEREC_CACHE", str(tmp_path / "cache"))
    spec = _spec(_dataset(tmp_path / "ds"), sizes=["tiny"], device="cpu")
    runs = plan_runs(spec, tmp_path / "out")
    rows_out = estimate_runs(spec, runs, tmp_path / "out", calibrate=False)
    est = {r["subset"]: r["est_targets"] for r in rows_out}
    for label, f in (("f0.1", 0.1), ("f0.5", 0.5), ("f1", 1.0)):
        rows = fraction_rows(N_USERS, f)
        assert est[label] == pytest.approx(2.0 * (_lengths()[rows].sum() - 3 * len(rows)))
    assert est["f0.1"] < est["f0.5"] < est["f1"]


def test_pooled_v3_spec_meets_the_design_bars() -> None:
    """Text and ID twins, 5 sizes, nested fractions over ≥ 1.5 decades, early stopping with a cap,
    the LR grids and evaluation the plan states (configs/sweeps/pooled_v3.toml)."""
    spec = load_spec(Path(__file__).resolve().parents[2] / "configs" / "sweeps" / "pooled_v3.toml")
    fr = sorted(spec.train_fractions)
    assert spec.encoders == ["text", "id"] and len(spec.sizes) == 5 and len(fr) >= 4
    assert math.log10(fr[-1] / fr[0]) >= 1.5 and spec.subsets == ["full"] and not spec.branches
    assert spec.lr_search == [0.333, 1.0, 3.0] and spec.lr_search_per_encoder == {
        "text": [0.333, 1.0, 3.0, 9.0],
        "id": [0.111, 0.333, 1.0, 3.0],  # widened after 223 runs: the ID winner sat at x1/3 in 29 of 30 cells
    }
    assert spec.seeds == [0, 1] and spec.extra_seeds == [2] and len(spec.extra_seed_sizes) == 2
    assert spec.base["train"]["batch_size"] == 1024 and spec.base["eval"]["patience"] > 0
    assert spec.base["eval"]["paper_sampled"] == 10000 and spec.base["eval"]["max_users"] == 20000
