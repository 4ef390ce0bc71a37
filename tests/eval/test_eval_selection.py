"""The accuracy benchmark selects configurations on validation only (benchmarks/selection.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import selection  # noqa: E402


def _run(tmp: Path, name: str, valid: float, test: float) -> Path:
    run = tmp / name
    run.mkdir()
    (run / "final.json").write_text(json.dumps({"valid": {"ndcg@10": valid}, "test": {"ndcg@10": test}}))
    return run


def test_winner_is_best_on_validation_even_when_test_disagrees(tmp_path: Path) -> None:
    scores = {"train.lr=1e-3": (0.05, 0.09), "train.lr=3e-4": (0.06, 0.01)}  # (valid, test)
    trained: list[tuple[str, int]] = []

    def cell(config: list[str], seed: int) -> Path:
        trained.append((config[0], seed))
        valid, test = scores[config[0]]
        return _run(tmp_path, f"{config[0]}_{seed}", valid + seed * 1e-4, test)

    grid = selection.parse_grid(["train.lr=1e-3,3e-4"])
    winner = selection.select("beauty", "sasrec_ce", grid, [0, 1], "ndcg@10", cell, tmp_path).config
    assert winner == ["train.lr=3e-4"] and len(trained) == 4
    report = json.loads((tmp_path / "selection" / "beauty_sasrec_ce.json").read_text())
    assert report["selected_on"] == "valid/ndcg@10" and "test" not in json.dumps(report["candidates"])


def test_selecting_on_test_is_refused_and_grids_expand() -> None:
    for bad in ("test/ndcg@10", "test_ndcg@10", "loss"):
        with pytest.raises(SystemExit, match="validation metric only"):
            selection.check_metric(bad)
    assert selection.check_metric("valid/hr@10") == "hr@10"
    grid = selection.parse_grid(["a=1,2", "b=x,y,z"])
    assert len(selection.candidates(grid)) == 6 and selection.candidates([]) == [[]]
    assert selection.config_tag([]) == "" and selection.config_tag(["a=1"]) != selection.config_tag(["a=2"])


def test_missing_or_nan_validation_is_never_selected(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / "final.json").write_text('{"valid": {}, "test": {"ndcg@10": 0.9}}')
    assert selection.valid_score(run, "ndcg@10") == float("-inf")


def test_best_published_is_beaten_only_by_the_lower_end_of_the_seed_interval() -> None:
    import accuracy

    def row(ndcg: float, masked: bool = True) -> dict:
        return {"dataset": "sports", "variant": "sasrec_ce", "hr@10": 0.0, "mrr@10": 0.0, "mask_seen": masked,
                "ndcg@10": {"mean": ndcg, "low": 0.0, "high": 1.0}, "most_pop_ndcg@10": 0.005}

    # 2026-12-06 Sports ID-SASRec: mean 0.0322, lower end 0.0318 -> not above 0.0323
    (s,) = accuracy.summarize([row(0.03233), row(0.03224), row(0.03201)])
    assert s["best_published"] == 0.0323 and s["above_best_published"] is False
    assert accuracy.published_cell(s).startswith("no (0.0318")
    # 2026-12-06, past the grid corner (lr 1.5e-4, wd 0.3): 0.0342 / 0.0335 / 0.0336 -> lower end 0.0328
    (s,) = accuracy.summarize([row(0.034221), row(0.033485), row(0.033593)])
    assert s["above_best_published"] is True and accuracy.published_cell(s).startswith("yes (0.0328 > 0.0323")
    # a mean above the figure is not enough when the interval reaches below it
    (s,) = accuracy.summarize([row(0.0300), row(0.0330), row(0.0360)])
    assert s["ndcg@10"] > 0.0323 and s["above_best_published"] is False
    (s,) = accuracy.summarize([row(0.0340), row(0.0342), row(0.0344)])
    assert s["above_best_published"] is True and accuracy.published_cell(s).startswith("yes (0.0337 > 0.0323")
    # unmasked runs, one seed, or a dataset with no published figure: no verdict
    assert accuracy.summarize([row(0.04, False), row(0.04, False)])[0]["above_best_published"] is None
    assert accuracy.summarize([row(0.04)])[0]["above_best_published"] is None
    games = [dict(row(0.06), dataset="games"), dict(row(0.061), dataset="games")]
    assert accuracy.summarize(games)[0]["above_best_published"] is None


def test_a_winner_on_the_grid_edge_is_flagged_per_axis() -> None:
    axes = ["train.lr=1e-3,5e-4,3e-4", "train.weight_decay=0.0,0.1", "model.norm=pre,post"]
    grid = selection.parse_grid(axes)
    # the 2026-12-06 Sports winner: lowest LR of three, highest decay of two; the text axis is not ordered
    edges = selection.winner_at_edge(grid, ["train.lr=3e-4", "train.weight_decay=0.1", "model.norm=pre"])
    assert edges == {"train.lr": "lowest", "train.weight_decay": "highest"}
    assert selection.winner_at_edge(grid, ["train.lr=5e-4", "train.weight_decay=0.0", "model.norm=post"]) == {
        "train.weight_decay": "lowest"}
    assert selection.winner_at_edge(selection.parse_grid(["a=1"]), ["a=1"]) == {}


def test_the_selection_table_names_the_edge(tmp_path: Path) -> None:
    def cell(config: list[str], seed: int) -> Path:
        lr = float(config[0].split("=")[1])
        return _run(tmp_path, f"{lr}_{seed}", valid=-lr, test=0.0)  # lower LR always better on validation

    grid = selection.parse_grid(["train.lr=1e-3,3e-4,1e-4"])
    assert selection.select("sports", "sasrec_ce", grid, [0], "ndcg@10", cell, tmp_path).config == [
        "train.lr=1e-4"]
    report = json.loads((tmp_path / "selection" / "sports_sasrec_ce.json").read_text())
    assert report["winner_at_edge"] == {"train.lr": "lowest"}


def test_a_star_design_varies_one_axis_at_a_time_around_the_middle(tmp_path: Path) -> None:
    grid = selection.parse_grid(["model.d_model=16,32,64", "train.lr=1e-2,3e-3,1e-3"])
    star = selection.candidates(grid, "star")
    assert star == [["model.d_model=32", "train.lr=3e-3"], ["model.d_model=16", "train.lr=3e-3"],
                    ["model.d_model=64", "train.lr=3e-3"], ["model.d_model=32", "train.lr=1e-2"],
                    ["model.d_model=32", "train.lr=1e-3"]]
    assert all(c in selection.candidates(grid, "full") for c in star)  # same run names as a full grid's
    with pytest.raises(SystemExit, match="odd number"):
        selection.candidates(selection.parse_grid(["a=1,2"]), "star")
    with pytest.raises(SystemExit, match="grid-design"):
        selection.candidates(grid, "random")

    def cell(config: list[str], seed: int) -> Path:  # valid peaks at d 32, lr 1e-3: the lr axis's edge
        d, lr = (float(c.split("=")[1]) for c in config)
        return _run(tmp_path, f"{d}_{lr}_{seed}", valid=-abs(d - 32) - lr, test=0.0)

    winner = selection.select("scientific", "text_ce", grid, [0], "ndcg@10", cell, tmp_path, "star").config
    assert winner == ["model.d_model=32", "train.lr=1e-3"]
    report = json.loads((tmp_path / "selection" / "scientific_text_ce.json").read_text())
    assert report["design"] == "star" and len(report["candidates"]) == 5
    assert report["winner_at_edge"] == {"train.lr": "lowest"}


def test_winners_at_an_edge_are_named_so_the_benchmark_can_stop_before_test() -> None:
    grid = selection.parse_grid(["model.d_model=16,32,64", "train.lr=1e-3,3e-4,1e-4"])
    winners = {("scientific", "hybrid_ce"): ["model.d_model=32", "train.lr=3e-4"],
               ("office", "hybrid_ce"): ["model.d_model=16", "train.lr=3e-4"]}
    assert selection.winners_at_edge(grid, winners) == {"office/hybrid_ce": {"model.d_model": "lowest"}}
    assert selection.winners_at_edge(grid, {("a", "b"): ["model.d_model=32", "train.lr=3e-4"]}) == {}


def test_the_report_says_when_the_winner_leads_by_less_than_seed_noise(tmp_path: Path) -> None:
    """Office's hybrid star (2026-12-07): lr 1e-4 led the centre by 0.0002 over 3 seeds whose spread was
    0.0005-0.0015. The winner stays the winner; the report says the lead is inside seed noise."""
    valid = {"train.lr=3e-4": [0.0820, 0.0807, 0.0791], "train.lr=1e-4": [0.0813, 0.0807, 0.0803],
             "train.lr=1e-3": [0.0777, 0.0768, 0.0775]}

    def cell(config: list[str], seed: int) -> Path:
        return _run(tmp_path, f"{config[0]}_{seed}", valid[config[0]][seed], test=0.0)

    grid = selection.parse_grid(["train.lr=1e-3,3e-4,1e-4"])
    winner = selection.select("office", "hybrid_ce", grid, [0, 1, 2], "ndcg@10", cell, tmp_path).config
    assert winner == ["train.lr=1e-4"]
    report = json.loads((tmp_path / "selection" / "office_hybrid_ce.json").read_text())
    m = report["margin"]
    assert m["runner_up"] == ["train.lr=3e-4"] and m["lead"] == pytest.approx(0.000167, abs=1e-6)
    assert m["seed_sd"]["runner_up"] == pytest.approx(0.00145, abs=1e-5) and m["within_seed_noise"] is True
    assert report["winner_at_edge"] == {"train.lr": "lowest"}


def test_a_clear_lead_is_not_called_noise_and_one_seed_gives_no_margin(tmp_path: Path) -> None:
    valid = {"train.lr=3e-4": [0.080, 0.081, 0.079], "train.lr=1e-3": [0.070, 0.071, 0.069]}

    def cell(config: list[str], seed: int) -> Path:
        return _run(tmp_path, f"{config[0]}_{seed}", valid[config[0]][seed], test=0.0)

    grid = selection.parse_grid(["train.lr=1e-3,3e-4"])
    selection.select("beauty", "sasrec_ce", grid, [0, 1, 2], "ndcg@10", cell, tmp_path)
    m = json.loads((tmp_path / "selection" / "beauty_sasrec_ce.json").read_text())["margin"]
    assert m["lead"] == pytest.approx(0.010) and m["within_seed_noise"] is False
    one_seed = tmp_path / "one_seed"
    one_seed.mkdir()

    def cell_one(config: list[str], seed: int) -> Path:
        return _run(one_seed, f"{config[0]}_{seed}", valid[config[0]][seed], test=0.0)

    selection.select("sports", "sasrec_ce", grid, [0], "ndcg@10", cell_one, one_seed)
    assert json.loads((one_seed / "selection" / "sports_sasrec_ce.json").read_text())["margin"] is None


def _budget_run(tmp: Path, name: str, valid: float, stopped_early: bool, by_time: bool = False) -> Path:
    run = tmp / name
    run.mkdir()
    final = {"valid": {"ndcg@10": valid}, "test": {"ndcg@10": 0.0}, "stopped_early": stopped_early,
             "stopped_by_time": by_time}
    (run / "final.json").write_text(json.dumps(final))
    return run


def test_a_winner_whose_runs_all_reached_the_budget_is_named_an_edge(tmp_path: Path) -> None:
    """Games ID star (2026-12-07): lr 1e-4 won by 0.0023, but its three runs all ended at the 200-epoch
    cap, still improving; its score is a lower bound and the cap, not the recipe, may rank it. The table
    counts such runs per candidate, and the budget is reported as an edge the selection has not bracketed."""
    runs = {"train.lr=1e-4": ([0.0742, 0.0740, 0.0740], [False, False, False]),
            "train.lr=3e-4": ([0.0717, 0.0719, 0.0716], [True, True, True])}

    def cell(config: list[str], seed: int) -> Path:
        valid, early = runs[config[0]]
        return _budget_run(tmp_path, f"{config[0]}_{seed}", valid[seed], early[seed])

    grid = selection.parse_grid(["train.lr=3e-4,1e-4"])
    chosen = selection.select("games", "sasrec_ce", grid, [0, 1, 2], "ndcg@10", cell, tmp_path)
    assert chosen.config == ["train.lr=1e-4"]
    report = json.loads((tmp_path / "selection" / "games_sasrec_ce.json").read_text())
    assert report["winner_reached_budget"] == 3
    assert [c["reached_budget"] for c in report["candidates"]] == [[True] * 3, [False] * 3]
    assert chosen.budget_reached is True


def test_a_winner_stopped_early_on_any_seed_is_not_a_budget_edge(tmp_path: Path) -> None:
    """One seed stopping early on validation shows the recipe can reach its optimum inside the budget; a run
    stopped by the clock counts as reaching the budget; a final.json without the flag (older runs) does
    not."""
    runs = {"train.lr=1e-4": [(0.08, False, False), (0.08, True, False), (0.08, False, False)],
            "train.lr=3e-4": [(0.07, True, False), (0.07, True, True), (0.07, True, False)]}

    def cell(config: list[str], seed: int) -> Path:
        valid, early, by_time = runs[config[0]][seed]
        return _budget_run(tmp_path, f"{config[0]}_{seed}", valid, early, by_time)

    grid = selection.parse_grid(["train.lr=3e-4,1e-4"])
    chosen = selection.select("office", "hybrid_ce", grid, [0, 1, 2], "ndcg@10", cell, tmp_path)
    report = json.loads((tmp_path / "selection" / "office_hybrid_ce.json").read_text())
    assert report["winner_reached_budget"] == 2
    assert report["candidates"][1]["reached_budget"] == [False, True, False]
    assert chosen.budget_reached is False
    assert selection.reached_budget(_run(tmp_path, "old", 0.05, 0.05)) is False
    single = selection.select("none", "single", selection.parse_grid(["train.lr=1e-4"]), [0], "ndcg@10",
                              cell, tmp_path)
    assert single == selection.Selection(["train.lr=1e-4"], budget_reached=False)  # nothing was selected


def test_the_next_grid_steps_past_each_edge_and_fixes_the_other_axes() -> None:
    """The Games ID star ended at lr 1e-4 (lowest of 1e-3, 3e-4, 1e-4) with d 64 interior: the next star
    centres on 1e-4 one grid step either side, d fixed. Integer axes stay integers; a winner at the top edge
    steps up."""
    grid = selection.parse_grid(["model.d_model=32,64,128", "train.lr=1e-3,3e-4,1e-4"])
    winner = ["model.d_model=64", "train.lr=1e-4"]
    edges = selection.winner_at_edge(grid, winner)
    assert selection.next_grid(grid, winner, edges) == ["model.d_model=64", "train.lr=3.33e-05,1e-4,3e-4"]
    top = ["model.d_model=128", "train.lr=3e-4"]
    assert selection.next_grid(grid, top, selection.winner_at_edge(grid, top)) == [
        "model.d_model=64,128,256", "train.lr=3e-4"]
    wd = selection.parse_grid(["train.weight_decay=0.0,0.1,0.3"])
    assert selection.next_grid(wd, ["train.weight_decay=0.0"], {"train.weight_decay": "lowest"}) == [
        "train.weight_decay=0.0"]
    assert selection.next_grid(wd, ["train.weight_decay=0.3"], {"train.weight_decay": "highest"}) == [
        "train.weight_decay=0.1,0.3,0.9"]
    # the step is the grid's own beside the winner (3e-4 next to 1e-4: x3), and 1e-4 keeps its spelling
    lr = selection.parse_grid(["train.lr=3e-4,1e-4,5e-5"])
    up = selection.next_grid(lr, ["train.lr=3e-4"], {"train.lr": "highest"})
    assert up == ["train.lr=1e-4,3e-4,0.0009"]
