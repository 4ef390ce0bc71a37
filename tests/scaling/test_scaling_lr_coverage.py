"""An incomplete LR search is flagged in words per (encoder, size); by-design extra seeds are not."""

from __future__ import annotations

from scalerec.scaling.lr_coverage import incomplete, incomplete_sizes, lr_coverage

GRID = "0.001,0.003,0.009"


def _row(size: str, subset: str, seed: int, lr: float, status: str = "ok", **extra) -> dict:
    return {
        "run_id": f"{size}-{subset}-{seed}-{lr}",
        "status": status,
        "encoder": extra.pop("encoder", "text"),
        "size": size,
        "subset": subset,
        "seed": seed,
        "lr": lr,
        "lr_grid": GRID,
        "n_params_non_embedding": {"tiny": 1e4, "s": 1e5, "m": 1e6}.get(size) if status == "ok" else None,
        "error": None if status == "ok" else "OutOfMemoryError: CUDA out of memory",
        **extra,
    }


def _table() -> list[dict]:
    rows = [
        _row("tiny", sub, seed, lr) for sub in ("d1", "d2") for seed in (0, 1) for lr in (0.001, 0.003, 0.009)
    ]
    rows += [_row("tiny", sub, 2, 0.003) for sub in ("d1", "d2")]  # an extra seed at its own LR only
    # s: one LR done, the other two failed
    rows += [_row("s", sub, 0, 0.003) for sub in ("d1", "d2")]
    rows += [_row("s", sub, 0, lr, status="failed") for sub in ("d1", "d2") for lr in (0.001, 0.009)]
    # m: nothing finished
    rows += [_row("m", sub, 0, lr, status="failed") for sub in ("d1", "d2") for lr in (0.001, 0.003, 0.009)]
    # a held-out size with a one-LR grid: never fitted, never flagged
    rows.append(_row("xl", "d2", 0, 0.003, holdout=True, lr_grid="0.003"))
    return rows


def test_complete_partial_and_missing_sizes() -> None:
    cov = lr_coverage(_table())
    assert [e["size"] for e in cov] == ["tiny", "s", "m"]  # by N, unknown N last; holdout left out
    tiny, s, m = cov
    assert tiny["complete"] is True and tiny["note"] == "" and tiny["lrs_done"] == [0.001, 0.003, 0.009]
    assert s["complete"] is False and s["lrs_done"] == [0.003] and s["n_failed"] == 4
    assert s["note"] == (
        "text/s: LR search incomplete, 1 of 3 LRs done (0.003 of 0.001, 0.003, 0.009); 4 of 6 runs failed; "
        "its LR choice is not a real search"
    )
    assert m["complete"] is False and m["n_ok"] == 0 and "no run finished" in m["note"]
    assert m["first_error"].startswith("OutOfMemoryError")
    assert [e["size"] for e in incomplete(cov)] == ["s", "m"]
    assert incomplete_sizes(cov, "text") == {"s", "m"} and incomplete_sizes(cov, "id") == set()


def test_one_d_point_short_of_the_grid_is_flagged_with_where() -> None:
    rows = [r for r in _table() if r["size"] == "tiny" and not (r["subset"] == "d2" and r["lr"] == 0.009)]
    (e,) = lr_coverage(rows)
    assert e["complete"] is False and e["lrs_done_by_subset"]["d2"] == [0.001, 0.003]
    assert "LR search incomplete at 1 of its D points, 3 of 3 LRs done" in e["note"]


def test_encoders_are_kept_apart() -> None:
    rows = _table() + [_row("s", "d1", 0, lr, encoder="id") for lr in (0.001, 0.003, 0.009)]
    cov = lr_coverage(rows)
    assert [(e["encoder"], e["size"], e["complete"]) for e in cov][-1] == ("id", "s", True)
    assert incomplete_sizes(cov, "id") == set()
