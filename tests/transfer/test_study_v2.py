"""The pure parts of the transfer study v2 (`scalerec.transfer.study`): leave-one-domain-out corpora,
nested fractions with the same evaluation users, the FLOPs plan, LR choice on validation, and the
resumable runner (finished cells are skipped)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalerec.transfer.study import corpora, plan, runner
from scalerec.transfer.study.cells import Cell, StudySpec, all_cells, phase2, phase3
from scalerec.transfer.study.execute import Context
from scalerec.transfer.study.store import Store, choices, choose_lr
from scalerec.transfer.study.table import _verdict


def _dataset(root: Path, seqs: dict[str, list[str]], items: dict[str, str]) -> Path:
    """A prepared-like dataset dir: users (key → item keys in time order), items (key → domain)."""
    keys = list(items)
    inter_u, inter_i = [], []
    for u, (_, seq) in enumerate(seqs.items(), start=1):
        inter_u += [u] * len(seq)
        inter_i += [keys.index(k) + 1 for k in seq]
    root.mkdir(parents=True)
    n = len(inter_u)
    dom = [items[keys[i - 1]] for i in inter_i]
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(inter_u, pa.int32()),
                "item_id": pa.array(inter_i, pa.int32()),
                "timestamp": pa.array(np.arange(n), pa.int64()),
                "rating": pa.array([None] * n, pa.float32()),
                "domain": dom,
            }
        ),
        root / "interactions.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "item_id": pa.array(np.arange(1, len(keys) + 1), pa.int32()),
                "item_key": keys,
                "title": [f"t {k}" for k in keys],
                "brand": [""] * len(keys),
                "categories": [["c"]] * len(keys),
                "domain": list(items.values()),
            }
        ),
        root / "items.parquet",
    )
    pq.write_table(
        pa.table({"user_id": pa.array(np.arange(1, len(seqs) + 1), pa.int32()), "user_key": list(seqs)}),
        root / "users.parquet",
    )
    card = {"format_version": 1, "n_users": len(seqs), "n_items": len(keys), "n_interactions": n}
    (root / "card.json").write_text(json.dumps(card))
    return root


def write_domain(root: Path, seed: int, n_items: int, n_users: int) -> Path:
    """A single-domain dataset dir with random histories of 3..9 items."""
    rng = np.random.default_rng(seed)
    items = {f"i{k}": "" for k in range(n_items)}
    seqs = {
        f"u{u}": [f"i{k}" for k in rng.integers(0, n_items, int(rng.integers(3, 10)))] for u in range(n_users)
    }
    return _dataset(root, seqs, items)


def test_corpus_minus_domain_has_no_target_user_or_item(tmp_path: Path) -> None:
    items = {
        "a:B000000001": "a",
        "a:B000000002": "a",
        "a:B0000000T1": "a",
        "b:7": "b",
        "b:8": "b",
        "tgt:B0000000T1": "tgt",
        "tgt:B0000000T2": "tgt",
        "tgt:9": "tgt",
    }
    pooled = _dataset(
        tmp_path / "pooled",
        {
            "a:AREVIEWERX1": ["a:B000000001", "a:B000000002", "a:B000000001"],  # a target reviewer elsewhere
            "a:AOTHER0001": ["a:B000000001", "a:B0000000T1", "a:B000000002", "a:B000000001"],  # shared ASIN
            "b:17": ["b:7", "b:8", "b:7"],  # numeric key: collides with target user "17" by accident
            "tgt:5": ["tgt:B0000000T1", "tgt:B0000000T2", "tgt:9"],
        },
        items,
    )
    target = _dataset(
        tmp_path / "target",
        {"AREVIEWERX1": ["B0000000T1", "B0000000T2", "9"], "17": ["9", "B0000000T2", "9"]},
        {"B0000000T1": "", "B0000000T2": "", "9": ""},
    )
    card = corpora.leave_domain_out(pooled, target, "tgt", tmp_path / "corpus")
    out = tmp_path / "corpus"
    inter, its, users = (pq.read_table(out / f"{n}.parquet") for n in ("interactions", "items", "users"))
    assert "tgt" not in set(inter["domain"].to_pylist()) and "tgt" not in set(its["domain"].to_pylist())
    assert "B0000000T1" not in {corpora.raw_key(k) for k in its["item_key"].to_pylist()}
    assert set(users["user_key"].to_pylist()) == {"a:AOTHER0001", "b:17"}  # the numeric "17" is kept
    assert card["source"]["items_shared_with_target"] == 1 and card["source"]["users_shared_with_target"] == 1
    # ids are dense and consistent: every interaction's item is the same key as before
    assert (
        its["item_id"].to_pylist() == list(range(1, its.num_rows + 1)) == list(range(1, card["n_items"] + 1))
    )
    keys = its["item_key"].to_pylist()
    seq = [
        keys[i - 1]
        for i, u in zip(inter["item_id"].to_pylist(), inter["user_id"].to_pylist(), strict=True)
        if u == 1
    ]
    assert seq == ["a:B000000001", "a:B000000002", "a:B000000001"]  # AOTHER lost its shared item → 3 left
    assert np.all(np.diff(inter["user_id"].to_numpy()) >= 0) and card["n_users"] == 2


def test_fractions_are_nested_with_identical_eval_users(tmp_path: Path) -> None:
    from scalerec.data.read.sequences import load_sequences
    from scalerec.data.read.splits import leave_one_out
    from scalerec.transfer.domain import fraction_rows, load_domain, with_fraction

    target = write_domain(tmp_path / "target", seed=3, n_items=30, n_users=60)
    users = {}
    for f in (0.1, 0.4, 1.0):
        d = tmp_path / f"f{f}"
        corpora.fraction_dataset(target, d, f)
        seqs = load_sequences(d)
        users[f] = set(np.nonzero(seqs.lengths() > 0)[0] + 1)
        assert seqs.n_items == 30 and seqs.n_users == 60  # same catalog and ids
        dom = with_fraction(load_domain(target, None), f)  # what finetune trains on at this fraction
        own = leave_one_out(seqs).train  # what a baseline trained on the fraction dir trains on
        rows = fraction_rows(60, f)
        assert dom.split.train.n_users == len(rows) == len(users[f])
        for i, r in enumerate(rows):
            assert np.array_equal(dom.split.train.row(i), own.row(r))
        assert own.lengths().sum() == dom.split.train.lengths().sum()
        full = load_domain(target, None)
        assert np.array_equal(dom.split.test_users, full.split.test_users)
        assert np.array_equal(dom.split.valid_users, full.split.valid_users)
    assert users[0.1] < users[0.4] < users[1.0] and len(users[0.1]) == 6


def test_grid_phases_and_chosen_lrs() -> None:
    spec = StudySpec(
        targets=["beauty"],
        sizes=["xs", "s"],
        key_size="s",
        fractions=[0.5, 1.0],
        strategies=["zero-shot", "full", "scratch"],
        seeds=[0, 1, 2],
    )
    p2 = phase2(spec)
    assert len(p2) == 2 * (1 + 3 + 3) and all(c.size == "s" and c.seed == 0 for c in p2)
    group = next(c for c in p2 if c.method == "full" and c.fraction == 0.5).group
    p3 = phase3(spec, {group: 1e-4})
    full_half = [c for c in p3 if c.method == "full" and c.fraction == 0.5]
    assert {(c.size, c.seed, c.lr) for c in full_half} == {("xs", 0, 1e-4), ("s", 1, 1e-4), ("s", 2, 1e-4)}
    assert all(c.lr is None for c in p3 if c.method == "scratch")  # not chosen yet
    assert len({c.name for c in all_cells(spec)}) == len(all_cells(spec))


def test_choose_lr_reads_validation_only_and_flags_an_edge() -> None:
    grid = [1e-4, 3e-4, 1e-3]
    rows = [
        {
            "cell": f"c{lr}",
            "group": "g",
            "lr": lr,
            "lr_grid": grid,
            "valid_ndcg@10": v,
            "test": {"overall": {"ndcg@10": 1.0 - v}},
        }
        for lr, v in zip(grid, [0.1, 0.3, 0.2], strict=True)
    ]
    assert choose_lr(rows[:2], "g") is None  # incomplete search: no choice yet
    chosen = choose_lr(rows, "g")
    assert chosen["lr"] == 3e-4 and not chosen["edge"]
    rows[2]["valid_ndcg@10"] = 0.5
    assert choose_lr(rows, "g")["lr"] == 1e-3 and choose_lr(rows, "g")["edge"]
    rows[0]["stopped_by_time"] = True  # the search says which points the time cap stopped
    assert [p["cut"] for p in choose_lr(rows, "g")["search"]] == [True, False, False]


def _layout(tmp_path: Path) -> dict:
    target = write_domain(tmp_path / "target", seed=4, n_items=30, n_users=60)
    corpus = write_domain(tmp_path / "corpus", seed=5, n_items=40, n_users=90)
    return {"targets": {"beauty": {"dataset": str(target), "corpus": str(corpus), "fractions": {}}}}


def test_plan_total_is_the_sum_of_cells(tmp_path: Path) -> None:
    spec = StudySpec(
        targets=["beauty"],
        sizes=["tiny", "xs"],
        key_size="tiny",
        fractions=[0.5, 1.0],
        baselines=["sasrec_ce"],
        flops_per_s=1e9,
        overhead_s=1.0,
    )
    root = Path(__file__).resolve().parents[2]
    costed = plan.cost(all_cells(spec), spec, _layout(tmp_path), root)
    by = {c.cell.name: c for c in costed}
    assert by["ft-beauty-tiny-f0.5-zero-shot-lr0-s0"].flops == 0.0
    half, full = by["ft-beauty-tiny-f0.5-full-lr0.0001-s0"], by["ft-beauty-tiny-f1-full-lr0.0001-s0"]
    assert half.flops == pytest.approx(full.flops / 2) and full.flops > 0  # targets scale with the fraction
    assert by["pre-beauty-xs-lr0.001"].flops > by["pre-beauty-tiny-lr0.001"].flops
    text = plan.render(costed, spec, call_minutes=2.0, jobs=1, verbose=False)
    total = sum(c.flops for c in costed)
    assert f"total     {len(costed):>4} cells  {total:.3e} FLOPs" in text
    parts = plan.calls(costed, 2.0)
    assert [c for p in parts for c in p] == costed  # every cell once, in run order
    for p in parts:
        assert len({c.cell.phase for c in p}) == 1
        assert len(p) == 1 or sum(c.minutes for c in p) <= 2.0


def test_runner_skips_finished_cells_and_waits_for_choices(tmp_path: Path, monkeypatch) -> None:
    from scalerec.transfer.study import execute

    spec = StudySpec(
        targets=["beauty"],
        sizes=["xs"],
        key_size="xs",
        fractions=[1.0],
        pretrain_lrs=[1e-3, 3e-3],
        strategies=["zero-shot", "scratch"],
        key_strategies=["scratch"],
        seeds=[0, 1],
        ft_lr_mults=[1.0],
        baselines=[],
    )
    calls: list[str] = []

    def fake(cell: Cell, ctx: Context):
        if cell.kind == "finetune":  # needs its pretraining choice, as the real runner does
            assert ctx.chosen["pre-beauty-xs-lr?"]["lr"] == 3e-3
        calls.append(cell.name)
        row = {
            "kind": cell.kind,
            "lr": cell.lr,
            "phase": cell.phase,
            "search": cell.search,
            "valid_ndcg@10": cell.lr or 0.0,
        }
        if cell.kind != "popular":
            row["lr_grid"] = spec.pretrain_lrs if cell.kind == "pretrain" else [cell.lr]
        return row, None

    monkeypatch.setitem(execute.RUNNERS, "pretrain", fake)
    monkeypatch.setitem(execute.RUNNERS, "finetune", fake)
    monkeypatch.setitem(execute.RUNNERS, "popular", fake)
    ctx = Context(spec, tmp_path, {"targets": {}}, "cpu", tmp_path)
    status = runner.run_study(ctx)
    assert status["left"] == 0 and not status["failed"]
    assert len(calls) == len(all_cells(spec)) == len(set(calls)) == 2 + 1 + 2 + 1
    assert calls.index("ft-beauty-xs-f1-scratch-lr0.001-s1") > calls.index(
        "ft-beauty-xs-f1-scratch-lr0.001-s0"
    )
    calls.clear()
    again = runner.run_study(ctx)  # everything finished: nothing runs again
    assert calls == [] and again["done"] == status["done"]
    Store(tmp_path).row_path(Cell("finetune", "beauty", 3, "xs", 1e-3, 1.0, "scratch", 1)).unlink()
    runner.run_study(ctx)
    assert calls == ["ft-beauty-xs-f1-scratch-lr0.001-s1"]  # only the missing cell reruns
    assert "pre-beauty-xs-lr?" in choices(Store(tmp_path).rows())


def test_a_free_slot_is_refilled_without_waiting_for_the_slowest_cell(tmp_path: Path, monkeypatch) -> None:
    """jobs=2: while one long pretraining cell runs, the other slot runs the rest of the ready cells (the
    long cell here waits until the most-popular cell, third in run order, has finished)."""
    import threading

    from scalerec.transfer.study import execute

    spec = StudySpec(targets=["beauty"], sizes=["xs"], key_size="xs", fractions=[1.0],
                     pretrain_lrs=[1e-3, 3e-3], strategies=["zero-shot"], key_strategies=[], seeds=[0],
                     ft_lr_mults=[1.0], baselines=[])
    popular_done, order = threading.Event(), []

    def fake(cell: Cell, ctx: Context):
        if cell.kind == "pretrain" and cell.lr == 1e-3:
            assert popular_done.wait(timeout=20), "the free slot waited for the long cell"
        order.append(cell.name)
        if cell.kind == "popular":
            popular_done.set()
        row = {"kind": cell.kind, "lr": cell.lr, "phase": cell.phase, "search": cell.search,
               "valid_ndcg@10": cell.lr or 0.0}
        if cell.kind == "pretrain":
            row["lr_grid"] = spec.pretrain_lrs
        return row, None

    for kind in ("pretrain", "finetune", "popular"):
        monkeypatch.setitem(execute.RUNNERS, kind, fake)
    shares = []

    def child(ctx, cell, jobs):
        shares.append(jobs)
        return runner._in_process(ctx, Store(ctx.work), cell)

    monkeypatch.setattr(runner, "_child", child)
    status = runner.run_study(Context(spec, tmp_path, {"targets": {}}, "cpu", tmp_path), jobs=2)
    assert status["left"] == 0 and not status["failed"]
    assert order.index("pop-beauty-f1") < order.index("pre-beauty-xs-lr0.001") < order.index(
        "ft-beauty-xs-f1-zero-shot-lr0-s0"
    )  # the fine-tuning cell still waited for the complete LR search
    assert set(shares) == {2}  # every child sizes its GPU tiles for its share of the card


def test_time_budget_starts_no_new_cell(tmp_path: Path, monkeypatch) -> None:
    from scalerec.transfer.study import execute

    spec = StudySpec(targets=["beauty"], sizes=["xs"], key_size="xs", fractions=[1.0], baselines=[])
    monkeypatch.setitem(execute.RUNNERS, "pretrain", lambda c, ctx: ({"kind": c.kind, "lr": c.lr}, None))
    status = runner.run_study(Context(spec, tmp_path, {"targets": {}}, "cpu", tmp_path), time_budget_min=0.0)
    assert status["stopped_by_budget"] and status["done"] == 0


@pytest.mark.parametrize(
    ("helped", "words"),
    [
        ([(0.05, True), (0.2, True), (1.0, False)], "stops helping at 1"),
        ([(0.05, True), (0.2, True), (1.0, True)], "helps at every measured fraction"),
        ([(0.05, False), (0.2, False), (1.0, False)], "does not significantly help at any measured fraction"),
        ([(0.05, False), (0.2, True), (1.0, False)], "helps only at fractions 0.2"),
    ],
)
def test_verdict_states_the_finding_either_way(helped: list, words: str) -> None:
    assert words in _verdict("beauty", helped)


def test_committed_study_configs_parse() -> None:
    from scalerec.config import load

    root = Path(__file__).resolve().parents[2] / "configs" / "transfer" / "study"
    files = sorted(root.glob("*.toml"))
    committed = ["v2", "v2_cpu_office", "v2_cpu_office3", "v2_cpu_office_xs", "v2_cpu_small"]
    assert [p.stem for p in files] == committed
    for path in files:
        spec = load(StudySpec, toml=path)
        assert spec.key_size in spec.sizes and len(all_cells(spec)) > 0


def _write_seeded_cells(work: Path, tests: dict[tuple[str, int], float], users: int = 400) -> None:
    """Final fine-tuning rows of Office at 20%, tiny, with test ranks that give each row its NDCG@10
    (validation = test, so the best on validation is the best on test)."""
    cells = work / "cells"
    cells.mkdir(exist_ok=True)
    for (method, seed), ndcg in tests.items():
        name = f"ft-office-tiny-f0.2-{method}-lr0.001-s{seed}"
        row = {"cell": name, "group": name, "kind": "finetune", "phase": 2 if seed == 0 else 3,
               "search": False, "target": "office", "fraction": 0.2, "size": "tiny", "method": method,
               "seed": seed, "lr": 1e-3, "valid_ndcg@10": ndcg, "test": {"overall": {"ndcg@10": ndcg}}}
        (cells / f"{name}.json").write_text(json.dumps(row))
        hits = int(users * ndcg / 0.3)  # rank 3 (NDCG 0.5) for a few users, far away for the rest
        ranks = np.full(users, 1000, dtype=np.int32)
        ranks[:hits] = 3
        np.savez(cells / f"{name}.npz", test=ranks)


def test_the_best_strategy_with_seeds_gets_its_own_seed_paired_comparison(tmp_path: Path) -> None:
    from scalerec.transfer.study.table import Results, _curve

    spec = StudySpec(targets=["office"], sizes=["tiny"], key_size="tiny", fractions=[0.2], seeds=[0, 1, 2],
                     strategies=["full", "freeze-transformer", "scratch"],
                     key_strategies=["full", "scratch", "freeze-transformer"], baselines=[])
    _write_seeded_cells(tmp_path, {("full", 0): 0.021, ("full", 1): 0.020, ("full", 2): 0.022,
                                   ("freeze-transformer", 0): 0.040, ("freeze-transformer", 1): 0.041,
                                   ("freeze-transformer", 2): 0.043, ("scratch", 0): 0.02,
                                   ("scratch", 1): 0.021, ("scratch", 2): 0.022})
    lines, data = _curve(Results(Store(tmp_path), spec), "office")
    best = data["0.2"]["best_vs_scratch_by_seed"]
    assert data["0.2"]["best"] == "freeze-transformer" and best["n_seeds"] == 3 and best["lo"] > 0
    assert "freeze-transformer vs scratch: +0.0203" in "\n".join(lines)


def test_the_verdict_rests_on_training_seeds_not_one_seed_bootstrap(tmp_path: Path) -> None:
    """Seed 0 of full fine-tuning beats scratch by far over the test users, the other seeds do not: the
    paired-by-seed interval spans 0, so the finding is "not significant" (a one-seed bootstrap would
    have called it better)."""
    from scalerec.transfer.study.table import Results, _curve

    spec = StudySpec(targets=["office"], sizes=["tiny"], key_size="tiny", fractions=[0.2], seeds=[0, 1, 2],
                     strategies=["full", "scratch"], baselines=[])
    _write_seeded_cells(tmp_path, {("full", 0): 0.06, ("full", 1): 0.020, ("full", 2): 0.021,
                                   ("scratch", 0): 0.02, ("scratch", 1): 0.024, ("scratch", 2): 0.022})
    res = Results(Store(tmp_path), spec)
    by_seed = res.seed_diff("office", 0.2, "tiny", "full", "scratch")
    assert by_seed is not None and by_seed["n_seeds"] == 3
    assert by_seed["diff"] == pytest.approx((0.04 - 0.004 - 0.001) / 3)
    assert by_seed["lo"] < 0 < by_seed["hi"]
    full0, scratch0 = (res.get("office", 0.2, "tiny", m, 0) for m in ("full", "scratch"))
    one_seed = res.diff(full0, scratch0)
    assert one_seed is not None and one_seed["lo"] > 0  # what the old verdict used
    lines, data = _curve(res, "office")
    assert "does not significantly help" in data["verdict"]
    assert "over 3 seeds (paired by seed" in "\n".join(lines)


def test_a_comparison_resting_on_time_capped_cells_is_left_unsettled(tmp_path: Path) -> None:
    """Full fine-tuning beats scratch on every seed, but one scratch seed was stopped by the time cap (it
    had less compute than the others): the fraction gets no verdict, the finding says why and names the
    cell, and the table and LR search mark it."""
    from scalerec.transfer.study.table import CUT_MARK, Results, _curve, _target_table

    spec = StudySpec(targets=["office"], sizes=["tiny"], key_size="tiny", fractions=[0.2], seeds=[0, 1, 2],
                     strategies=["full", "scratch"], baselines=[])
    _write_seeded_cells(tmp_path, {("full", 0): 0.040, ("full", 1): 0.041, ("full", 2): 0.043,
                                   ("scratch", 0): 0.02, ("scratch", 1): 0.021, ("scratch", 2): 0.022})
    res = Results(Store(tmp_path), spec)
    lines, data = _curve(res, "office")
    assert "helps" in data["verdict"] and "unsettled" not in data["verdict"]  # like-for-like: a verdict
    assert CUT_MARK not in "\n".join(_target_table(res, "office"))  # no mark, so no legend either
    cut = tmp_path / "cells" / "ft-office-tiny-f0.2-scratch-lr0.001-s1.json"
    row = json.loads(cut.read_text())
    cut.write_text(json.dumps({**row, "stopped_by_time": True}))
    res = Results(Store(tmp_path), spec)
    lines, data = _curve(res, "office")
    assert "helps at" not in data["verdict"] and "At 0.2 it is unsettled" in data["verdict"]
    assert data["0.2"]["cut_by_time"] == ["ft-office-tiny-f0.2-scratch-lr0.001-s1"]
    assert "not like-for-like" in "\n".join(lines)
    table = "\n".join(_target_table(res, "office"))
    assert f"| scratch {CUT_MARK}1/3 |" in table and f"| full {CUT_MARK}" not in table
    assert f"{CUT_MARK}k/n after a method" in table  # the mark is explained


def test_child_gets_its_gpu_share(tmp_path: Path, monkeypatch) -> None:
    """A child process sizes its ranking tiles for 1/jobs of the card: the env var reaches it."""
    from scalerec.memory import GPU_SHARE_ENV

    seen = {}
    monkeypatch.setattr(runner.subprocess, "call", lambda cmd, env: seen.update(env) or 0)
    spec = StudySpec(targets=["beauty"], sizes=["xs"], key_size="xs", fractions=[1.0], baselines=[])
    cell = Cell("popular", "beauty", 1, fraction=1.0)
    assert runner._child(Context(spec, tmp_path, {"targets": {}}, "cuda", tmp_path), cell, 12) == 0
    assert seen[GPU_SHARE_ENV] == "12"


def test_tuned_verdict_names_the_strongest_recipe_per_fraction() -> None:
    from scalerec.transfer.study.table import _tuned_verdict

    text = _tuned_verdict(
        "beauty",
        [(0.05, "hybrid_ce", {"diff": 0.002, "lo": 0.001, "hi": 0.003}, False),
         (0.2, "text_ce", {"diff": -0.0026, "lo": -0.004, "hi": -0.001}, False),
         (1.0, "sasrec_ce", {"diff": 0.001, "lo": -0.001, "hi": 0.003}, True)],
    )
    assert "better at 0.05 (vs tuned hybrid_ce, +0.0020)" in text
    assert "worse at 0.2 (vs tuned text_ce, -0.0026)" in text
    assert "not significantly different at 1 (vs tuned sasrec_ce, +0.0010; not like-for-like" in text
    assert "no fraction" in _tuned_verdict("beauty", [])


def test_strongest_baseline_is_picked_on_validation_not_test() -> None:
    from types import SimpleNamespace

    from scalerec.transfer.study.table import _strongest_baseline

    rows = {"tuned text_ce": {"valid_ndcg@10": 0.03, "test": {"overall": {"ndcg@10": 0.01}}},
            "tuned sasrec_ce": {"valid_ndcg@10": 0.02, "test": {"overall": {"ndcg@10": 0.09}}},
            "tuned hybrid_ce": None}
    res = SimpleNamespace(
        spec=SimpleNamespace(baselines=["text_ce", "sasrec_ce", "hybrid_ce"]),
        get=lambda target, f, size, method, seed: rows[method],
    )
    assert _strongest_baseline(res, "beauty", 0.2) == "text_ce"


def test_a_grown_pretraining_grid_holds_back_and_reruns_fine_tuning(tmp_path: Path, monkeypatch) -> None:
    """Pretraining searched {1e-3, 3e-3}; the grid grows by 3e-4 for that size. Fine-tuning waits until the
    new point has run, and when it wins, the rows fine-tuned from the old winner are stale: they run again,
    and the report leaves them out."""
    from scalerec.transfer.study import execute
    from scalerec.transfer.study.store import Store, stale
    from scalerec.transfer.study.table import Results

    valid = {1e-3: 0.02, 3e-3: 0.01, 3e-4: 0.03}
    ran: list[str] = []

    def fake(cell: Cell, ctx: Context):
        ran.append(cell.name)
        row = {"kind": cell.kind, "target": cell.target, "size": cell.size, "lr": cell.lr,
               "phase": cell.phase, "search": cell.search, "seed": cell.seed, "fraction": cell.fraction,
               "method": cell.method}
        if cell.kind == "pretrain":
            row.update(lr_grid=ctx.spec.pretrain_grid(cell.size), **{"valid_ndcg@10": valid[cell.lr]})
        if cell.kind == "finetune":
            row.update(pretrained=ctx.chosen[f"pre-{cell.target}-{cell.size}-lr?"]["cell"])
        return row, None

    for kind in ("pretrain", "finetune", "popular"):
        monkeypatch.setitem(execute.RUNNERS, kind, fake)
    base = dict(targets=["beauty"], sizes=["xs"], key_size="xs", fractions=[1.0], pretrain_lrs=[1e-3, 3e-3],
                strategies=["zero-shot"], key_strategies=[], seeds=[0], ft_lr_mults=[1.0], baselines=[])
    runner.run_study(Context(StudySpec(**base), tmp_path, {"targets": {}}, "cpu", tmp_path))
    ft = "ft-beauty-xs-f1-zero-shot-lr0-s0"
    assert ran.count(ft) == 1 and json.loads((tmp_path / "cells" / f"{ft}.json").read_text())[
        "pretrained"] == "pre-beauty-xs-lr0.001"

    grown = StudySpec(**{**base, "pretrain_lrs_per_size": {"xs": [3e-4, 1e-3, 3e-3]}})
    ctx = Context(grown, tmp_path, {"targets": {}}, "cpu", tmp_path)
    ready, _ = runner.pending(ctx, Store(tmp_path))
    assert [c.name for c in ready] == ["pre-beauty-xs-lr0.0003"]  # nothing fine-tunes before the new point
    runner.run_study(ctx)
    assert ran.count(ft) == 2  # the new winner (3e-4) made the first fine-tuning row stale
    row = json.loads((tmp_path / "cells" / f"{ft}.json").read_text())
    assert row["pretrained"] == "pre-beauty-xs-lr0.0003" and not stale(row, ctx.chosen)
    res = Results(Store(tmp_path), grown)
    assert not res.stale and [r["cell"] for r in res.final if r["kind"] == "finetune"] == [ft]


def test_scratch_rows_outlive_a_moved_pretraining_choice() -> None:
    """Scratch takes only the architecture and token table of the chosen checkpoint, so a row built on an
    older checkpoint of the same size stays valid; a row fine-tuned from its weights does not."""
    from scalerec.transfer.study.store import stale

    pre = {"cell": "pre-office-xs-lr0.01", "group": "pre-office-xs-lr?", "kind": "pretrain",
           "target": "office", "size": "xs", "lr": 0.01, "lr_grid": [0.003, 0.01], "valid_ndcg@10": 0.03,
           "best_step": 6305}
    other = {**pre, "cell": "pre-office-xs-lr0.003", "lr": 0.003, "valid_ndcg@10": 0.02, "best_step": 2910}
    chosen = choices([pre, other])
    built = {"kind": "finetune", "target": "office", "size": "xs", "pretrained": "pre-office-xs-lr0.01",
             "pretrained_version": 10}
    for method in ("full", "freeze-transformer", "ewc"):
        assert stale({**built, "method": method}, chosen)
    for method in ("scratch", "id-scratch"):
        assert not stale({**built, "method": method}, chosen)
    moved = {**built, "pretrained": "pre-office-xs-lr0.003", "pretrained_version": 2910}
    assert stale({**moved, "method": "full"}, chosen) and not stale({**moved, "method": "scratch"}, chosen)


def test_finetune_lr_table_lists_real_searches_only() -> None:
    from types import SimpleNamespace

    from scalerec.transfer.study.table import _finetune_lr_table

    chosen = {
        "pre-beauty-s-lr?": {"lr": 1e-3, "edge": True, "search": [{"lr": 1e-3, "valid_ndcg@10": 0.02}] * 3},
        "ft-beauty-s-f0.2-full-lr?-s0": {"lr": 1e-3, "edge": False, "search": [
            {"lr": 3e-4, "valid_ndcg@10": 0.02}, {"lr": 1e-3, "valid_ndcg@10": 0.03},
            {"lr": 3e-3, "valid_ndcg@10": 0.01}]},
        "ft-beauty-s-f0.2-full-lr?-s1": {"lr": 1e-3, "edge": False,
                                         "search": [{"lr": 1e-3, "valid_ndcg@10": 0.03}]},
        "ft-beauty-s-f0.2-zero-shot-lr?-s0": {"lr": 0.0, "edge": False,
                                              "search": [{"lr": 0.0, "valid_ndcg@10": None}]},
    }
    rows = _finetune_lr_table(SimpleNamespace(chosen=chosen))[2:]
    assert len(rows) == 1
    assert rows[0].startswith("| ft-beauty-s-f0.2-full-lr?-s0 |") and rows[0].endswith("| no |")


def test_fine_tuning_waits_for_a_checkpoint_this_machine_does_not_hold(tmp_path: Path) -> None:
    """A pretraining row that names a run dir whose weights are not here (they travel as parts, and not
    every size fits one call) holds its fine-tuning back instead of failing it; it runs once they arrive."""
    from scalerec.transfer.study.store import Store

    spec = StudySpec(targets=["beauty"], sizes=["xs"], key_size="xs", fractions=[1.0], pretrain_lrs=[1e-3],
                     strategies=["zero-shot"], key_strategies=[], seeds=[0], ft_lr_mults=[1.0],
                     baselines=[])
    store, cell = Store(tmp_path), Cell("pretrain", "beauty", 1, "xs", 1e-3, search=True)
    store.write(cell, {"kind": "pretrain", "target": "beauty", "size": "xs", "lr": 1e-3, "lr_grid": [1e-3],
                       "valid_ndcg@10": 0.02, "run_dir": str(tmp_path / "runs" / cell.name)})
    ctx = Context(spec, tmp_path, {"targets": {}}, "cpu", tmp_path)
    ft = "ft-beauty-xs-f1-zero-shot-lr0-s0"
    ready, todo = runner.pending(ctx, store)
    assert ft not in {c.name for c in ready} and ft in {c.name for c in todo}
    assert not runner.holds_checkpoint(tmp_path, json.loads(store.row_path(cell).read_text()))
    (tmp_path / "runs" / cell.name).mkdir(parents=True)
    (tmp_path / "runs" / cell.name / "model.safetensors").write_bytes(b"weights")
    assert ft in {c.name for c in runner.pending(ctx, store)[0]}


def test_a_cell_cut_by_the_time_box_continues_where_its_state_is_held(tmp_path: Path, monkeypatch) -> None:
    """A fine-tuning cell that the time box stopped leaves a state beside its output and runs again, to
    continue, in the same call or a later one; its row is replaced once it ends. Without the state (a fresh
    machine), or with `continue_cut` off, the cut row stands."""
    from scalerec.transfer.finetune import resume_path
    from scalerec.transfer.study import execute

    spec = StudySpec(targets=["beauty"], sizes=["xs"], key_size="xs", fractions=[1.0], pretrain_lrs=[1e-3],
                     strategies=["scratch"], key_strategies=["scratch"], seeds=[0], ft_lr_mults=[1.0],
                     baselines=[])
    cell = "ft-beauty-xs-f1-scratch-lr0.001-s0"
    state = resume_path(tmp_path / "ft" / cell)
    calls: list[str] = []
    plan = {"cut": True, "hold_state": True}

    def fake(c: Cell, ctx: Context):
        calls.append(c.name)
        row = {"kind": c.kind, "lr": c.lr, "phase": c.phase, "search": c.search, "valid_ndcg@10": 0.1}
        if c.kind != "popular":
            row["lr_grid"] = [c.lr]
        if c.kind == "finetune":
            cut, plan["cut"] = plan["cut"], False  # cut once, then it ends
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_bytes(b"state") if cut and plan["hold_state"] else state.unlink(missing_ok=True)
            row.update(run_dir=str(state.parent / c.name), stopped_by_time=cut)
        return row, None

    for kind in ("pretrain", "finetune", "popular"):
        monkeypatch.setitem(execute.RUNNERS, kind, fake)
    ctx = Context(spec, tmp_path, {"targets": {}}, "cpu", tmp_path)
    runner.run_study(ctx)
    assert calls.count(cell) == 2  # cut, then continued in the same call
    assert next(r for r in Store(tmp_path).rows() if r["cell"] == cell)["stopped_by_time"] is False

    other = tmp_path / "cold"  # the same, where the machine does not hold the state
    state = resume_path(other / "ft" / cell)
    plan.update(cut=True, hold_state=False)
    calls.clear()
    ctx = Context(spec, other, {"targets": {}}, "cpu", other)
    runner.run_study(ctx)
    runner.run_study(ctx)
    assert calls.count(cell) == 1  # the cut row stands
    state.write_bytes(b"state")  # now it does (a warm machine)
    off = Context(StudySpec(**{**dataclasses.asdict(spec), "continue_cut": False}), other,
                  {"targets": {}}, "cpu", other)
    runner.run_study(off)
    assert calls.count(cell) == 1  # continue_cut off: it still stands
    runner.run_study(ctx)
    assert calls.count(cell) == 2 and not state.exists()


def test_a_cut_pretraining_run_continues_and_fine_tuning_follows_its_version(
    tmp_path: Path, monkeypatch
) -> None:
    """A pretraining cell that the time box stopped, where this machine holds its state.pt, runs again (an
    extension); fine-tuning waits for it and records which version of the weights it used (the best step).
    A row fine-tuned on an earlier version, or written before versions were recorded, is stale once an
    extension has found better weights, and fine when the extension found none."""
    from scalerec.transfer.study import execute
    from scalerec.transfer.study.store import stale

    spec = StudySpec(targets=["beauty"], sizes=["xs"], key_size="xs", fractions=[1.0], pretrain_lrs=[1e-3],
                     strategies=["zero-shot"], key_strategies=[], seeds=[0], ft_lr_mults=[1.0], baselines=[])
    pre, ft = "pre-beauty-xs-lr0.001", "ft-beauty-xs-f1-zero-shot-lr0-s0"
    run_dir = tmp_path / "runs" / pre
    best_steps = iter([10, 20])
    calls: list[str] = []

    def fake(c: Cell, ctx: Context):
        calls.append(c.name)
        row = {"kind": c.kind, "target": c.target, "size": c.size, "lr": c.lr, "phase": c.phase,
               "search": c.search, "seed": c.seed, "fraction": c.fraction, "method": c.method}
        if c.kind == "pretrain":
            best = next(best_steps)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "state.pt").write_bytes(b"state")  # a finished run keeps its state.pt too
            (run_dir / "model.safetensors").write_bytes(b"weights")
            row.update(lr_grid=[c.lr], run_dir=str(run_dir), best_step=best, stopped_by_time=best == 10,
                       **{"valid_ndcg@10": 0.01 * best})
        if c.kind == "finetune":
            choice = ctx.chosen[f"pre-{c.target}-{c.size}-lr?"]
            assert not ctx.pretraining  # never fine-tuned while its pretraining still runs
            row.update(pretrained=choice["cell"], pretrained_version=choice["version"])
        return row, None

    for kind in ("pretrain", "finetune", "popular"):
        monkeypatch.setitem(execute.RUNNERS, kind, fake)
    ctx = Context(spec, tmp_path, {"targets": {}}, "cpu", tmp_path)
    runner.run_study(ctx)
    assert calls.count(pre) == 2 and calls.count(ft) == 1  # cut, extended; then fine-tuned once
    rows = {r["cell"]: r for r in Store(tmp_path).rows()}
    assert rows[pre]["best_step"] == 20 and rows[pre]["first_version"] == 10
    assert rows[ft]["pretrained_version"] == 20 and not stale(rows[ft], ctx.chosen)
    chosen = choices(list(rows.values()))
    legacy = {k: v for k, v in rows[ft].items() if k != "pretrained_version"}  # built on version 10
    assert stale(legacy, chosen) and stale({**rows[ft], "pretrained_version": 10}, chosen)
    unchanged = {**rows[pre], "first_version": 20}  # an extension that found no better weights
    assert not stale(legacy, choices([unchanged, rows[ft]]))
    assert not runner.pending(ctx, Store(tmp_path))[1]  # the extended row is not cut: nothing left
    Store(tmp_path).write(Cell("pretrain", "beauty", 1, "xs", 1e-3, search=True),
                          {**rows[pre], "stopped_by_time": True})  # cut again, its state held here
    Store(tmp_path).row_path(ft).unlink()
    ready, todo = runner.pending(ctx, Store(tmp_path))
    assert [c.name for c in ready] == [pre] and ft in {c.name for c in todo}  # ft waits for the extension
