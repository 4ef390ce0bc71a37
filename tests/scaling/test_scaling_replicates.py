"""`table.annotate`: a seed that ran one LR beside seeds that searched is an LR winner only if a searched
seed chose that LR (pooled_v3's extra seeds ran the grid's centre, fixed before the search)."""

from __future__ import annotations

from scalerec.scaling.table import annotate


def _row(seed: int, lr: float, loss: float, size: str = "s", holdout: bool = False) -> dict:
    return {
        "run_id": f"{size}-{seed}-{lr}-{holdout}",
        "status": "ok",
        "encoder": "id",
        "size": size,
        "subset": "f0.1",
        "seed": seed,
        "lr": lr,
        "lr_grid": "0.001,0.003,0.009",
        "valid_loss": loss,
        "holdout": holdout,
    }


def _selected(rows: list[dict]) -> set[str]:
    return {r["run_id"] for r in annotate(rows) if r["lr_selected"]}


def test_a_replicate_of_a_losing_lr_is_not_a_winner() -> None:
    rows = [_row(s, lr, 10.0 + lr * 100) for s in (0, 1) for lr in (0.001, 0.003, 0.009)]
    rows.append(_row(2, 0.003, 10.1))  # centre LR only; the searched seeds chose 0.001
    assert _selected(rows) == {"s-0-0.001-False", "s-1-0.001-False"}


def test_a_replicate_of_a_winning_lr_stays_a_winner() -> None:
    rows = [_row(s, lr, 10.0 + abs(lr - 0.003) * 100) for s in (0, 1) for lr in (0.001, 0.003, 0.009)]
    rows.append(_row(2, 0.003, 10.4))
    assert "s-2-0.003-False" in _selected(rows)


def test_one_lr_everywhere_and_other_cells_are_untouched() -> None:
    # no seed of the cell searched: every seed's only run is its winner, as before
    rows = [_row(s, 0.003, 10.0 + s, size="t") for s in (0, 1, 2)]
    # a held-out run is its own family: the searched seeds of the fitted cell do not judge it
    rows += [_row(0, lr, 10.0 + lr * 100) for lr in (0.001, 0.003)] + [_row(1, 0.009, 9.0, holdout=True)]
    assert _selected(rows) == {
        "t-0-0.003-False",
        "t-1-0.003-False",
        "t-2-0.003-False",
        "s-0-0.001-False",
        "s-1-0.009-True",
    }


def test_seed_spread_still_counts_every_seed_at_an_lr() -> None:
    rows = [_row(s, lr, 10.0 + lr * 100 + s * 0.01) for s in (0, 1) for lr in (0.001, 0.003)]
    rows.append(_row(2, 0.003, 10.32))
    centre = [r for r in annotate(rows) if r["lr"] == 0.003]
    assert {r["n_seeds"] for r in centre} == {3}
