"""benchmarks/pooled_v3_tables.py on the committed pooled_v3 table: the README quotes its numbers, so they
must come out of it; seeds that never searched the LR stay out of the means; test columns are never read."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from bench_scripts import load_script

TABLE = Path(__file__).resolve().parents[2] / "docs" / "results" / "pooled_v3" / "results.parquet"


def _rows() -> list[dict]:
    return pq.read_table(TABLE).to_pylist()


def test_the_committed_tables_md_is_what_the_script_prints() -> None:
    out = load_script("benchmarks/pooled_v3_tables.py").tables(_rows())
    assert out.strip() == (TABLE.parent / "tables.md").read_text().strip()
    assert "16 such runs" in out  # the centre-LR-only extra seeds, left out of the means
    assert "f0.33 (D = 285,891 unique targets): xs 8.881" in out  # quoted in the README
    assert "| id | f0.33 | 0.0259 ± 0.0001 | 0.0249 ± 0.0009 | 0.0261 ± 0.0007 |" in out


def test_test_columns_do_not_change_the_tables() -> None:
    rows = _rows()
    scrambled = [{k: (-1.0 if k.startswith("test") else v) for k, v in r.items()} for r in rows]
    tables = load_script("benchmarks/pooled_v3_tables.py").tables
    assert tables(scrambled) == tables(rows)


V3B = TABLE.parents[1] / "pooled_v3b" / "results.parquet"


def test_the_committed_v3b_tables_md_is_what_the_script_prints() -> None:
    """pooled_v3b, complete (164 runs): the committed tables.md, with the figures its README and BENCHMARKS.md
    quote. (While it was under way the ID twin had no f1.0 row and the script raised StopIteration.)"""
    script = load_script("benchmarks/pooled_v3_tables.py")
    rows = pq.read_table(V3B).to_pylist()
    out = script.report(rows, with_per_lr=True)
    assert out.strip() == (V3B.parent / "tables.md").read_text().strip()
    assert "f0.33 (D = 285,891 unique targets): tiny 8.649" in out  # quoted in the README and BENCHMARKS
    xs_id = "| id | f0.33 | xs | **0.000333: 8.870 (2, 2)**; 0.000999: 8.883 (2, 0); 0.003: 9.033 (2, 0) |"
    assert xs_id in out
    assert "f1 (D = 861,955 unique targets): xs 8.402" in out and "tiny 8.081" in out
    # the held-out m, LR chosen per seed on validation (2026-12-07 call 13), listed but not ranked
    m_row = "| m (held out) | 6,429,952 | 8.721 ± 0.023‡ | 0.0183 | 0/6 | 8.400 ± 0.001 | 0.0278 | 4/6 |"
    assert m_row in out
    text_m = "| text | f1 | m (held out) | 0.000475: 8.458 (2, 2); **0.00095: 8.400 (2, 2)**; "
    assert text_m + "0.0019: 8.791 (2, 0) |" in out
    # the ID m's LR searched too (calls 14-15): at f1.0 both seeds chose x1/2, inside the grid, at the cap
    id_m = "| m (held out) | 6,331,392 | 8.842 ± 0.005 | 0.0249 | 1/8 | 8.148 ± 0.002 | 0.0321 | 4/8 |"
    assert id_m in out
    id_m_lr = "| id | f1 | m (held out) | 6.5e-05: 8.535 (2, 2); **0.00013: 8.148 (2, 2)**; 0.00026: 8.180 "
    assert id_m_lr in out


def test_held_out_runs_have_their_own_step_cap() -> None:
    """A held-out size runs a longer budget than the fitted ones; counting its runs against the fitted cap
    would call every fitted run uncapped (the per-LR table did so once the held-out m reached 3,360 steps)."""
    script = load_script("benchmarks/pooled_v3_tables.py")
    fitted = [_row(0.001, 0, 9.0), _row(0.003, 0, 8.0, selected=True, edge=False), _row(0.009, 0, 8.5)]
    held = [dict(r, holdout=True, size="m", steps=140) for r in fitted]
    held[0]["steps"] = 60  # stopped early
    out = script.per_lr(fitted + held)
    lrs = "0.001: 9.000 (1, {}); **0.003: 8.000 (1, 1)**; 0.009: 8.500 (1, 1) |"
    assert "| text | f0.33 | tiny | " + lrs.format(1) in out
    assert "| text | f0.33 | m (held out) | " + lrs.format(0) in out
    summary = script.tables(fitted + held)
    assert "Lowest mean validation loss by fraction: f0.33 (D = 10 unique targets): tiny 8.000" in summary
    assert "| m (held out) | 5 | 8.000 | 0.0100 | 2/3 |" in summary


def _row(lr: float, seed: int, loss: float, *, selected: bool = False, edge: bool | None = None) -> dict:
    return {
        "status": "ok", "holdout": False, "encoder": "text", "size": "tiny", "train_fraction": 0.33,
        "seed": seed, "lr": lr, "lr_grid": "0.001,0.003,0.009", "steps": 100, "valid_loss": loss,
        "valid_ndcg@10": 0.01, "best_valid_ndcg@10": 0.01, "unique_targets": 10, "n_params_non_embedding": 5,
        "lr_selected": selected, "lr_at_edge": edge,
    }


def test_marks_say_when_a_grid_is_unfinished_or_its_winner_at_an_edge() -> None:
    script = load_script("benchmarks/pooled_v3_tables.py")
    full_interior = [_row(0.001, 0, 9.0), _row(0.003, 0, 8.0, selected=True, edge=False), _row(0.009, 0, 8.5)]
    assert script._marks(full_interior, [full_interior[1]]) == ""
    unfinished = full_interior[:2]
    assert script._marks(unfinished, [unfinished[1]]) == "†"
    at_edge = [_row(0.001, 0, 7.0, selected=True, edge=True), _row(0.003, 0, 8.0), _row(0.009, 0, 8.5)]
    assert script._marks(at_edge, [at_edge[0]]) == "‡"
    per_lr = script.per_lr(full_interior)
    line = "| text | f0.33 | tiny | 0.001: 9.000 (1, 1); **0.003: 8.000 (1, 1)**; 0.009: 8.500 (1, 1) |"
    assert line in per_lr
