"""End-to-end fine-tuning on the tiny two-domain world: every strategy runs, and the outputs hold
what the report needs (overall, cold-start, most-popular, forgetting)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scalerec.config import load
from scalerec.transfer.finetune import FinetuneConfig, finetune


def _cfg(world: dict[str, Path], strategy: str, out: Path, **extra: object) -> FinetuneConfig:
    sets = [f"pretrained={world['run']}", f"data={world['target']}", f"out={out}", f"strategy={strategy}",
            "epochs=2", "stage_epochs=1", "batch_size=16", "n_negatives=16", "n_boot=50", "ewc_batches=3",
            "tracking_uri=off"]
    sets += [f"{k}={v}" for k, v in extra.items()]
    return load(FinetuneConfig, overrides=sets)


def test_zero_shot_uses_pretrained_tokenizer_and_reports_cold(world: dict[str, Path], tmp_path: Path) -> None:
    summary = finetune(_cfg(world, "zero-shot", tmp_path / "zs"))
    out = tmp_path / "zs"
    table = json.loads((out / "tokens" / "token_table.json").read_text())
    src = json.loads((world["tokens"] / "token_table.json").read_text())
    assert table["vocab_size"] == src["vocab_size"]
    tokenizer = (out / "tokens" / "tokenizer.json").read_bytes()
    assert tokenizer == (world["tokens"] / "tokenizer.json").read_bytes()
    assert summary["n_cold_targets"] > 0
    assert summary["test"]["cold"]["n"] == summary["n_cold_targets"]
    assert 0 <= summary["test"]["overall"]["ndcg@10"] <= 1
    assert summary["targets_seen"] == 0 and summary["plan"] == []
    assert summary["source"]["before"]["ndcg@10"] == pytest.approx(summary["source"]["after"]["ndcg@10"])
    ranks = np.load(out / "ranks.npz")
    assert len(ranks["test"]) == summary["n_test_users"] and ranks["test"].min() >= 1
    assert json.loads((out / "transfer.json").read_text())["strategy"] == "zero-shot"


@pytest.mark.parametrize("strategy", ["full", "freeze-transformer", "progressive", "ewc"])
def test_strategies_train_and_report(world: dict[str, Path], tmp_path: Path, strategy: str) -> None:
    summary = finetune(_cfg(world, strategy, tmp_path / strategy))
    assert summary["targets_seen"] > 0 and summary["flops"] > 0
    assert summary["source"]["after"]["n"] == summary["source"]["before"]["n"]
    assert len(summary["curve"]) >= 2
    if strategy == "progressive":
        assert [s["name"] for s in summary["plan"]] == ["top-1", "top-2", "all"]
    from scalerec.rundir import load_run

    loaded = load_run(tmp_path / strategy)
    assert loaded.model.n_items == 32


def test_id_scratch_cannot_score_cold_items(world: dict[str, Path], tmp_path: Path) -> None:
    summary = finetune(_cfg(world, "id-scratch", tmp_path / "id"))
    assert summary["item_encoder"] == "id"
    assert summary["test"]["cold"]["status"] == "unsupported"
    assert "cannot score" in summary["test"]["cold"]["reason"]
    assert "ndcg@10" in summary["test"]["overall"]
    assert summary["source"] is None


def test_id_pretrained_model_gets_a_clear_unsupported_result(world: dict[str, Path], tmp_path: Path) -> None:
    from conftest import pretrain_run
    from scalerec.transfer.report import transfer_report

    run = pretrain_run(tmp_path / "id_run", world["source"], world["tokens"], item_encoder="id", epochs=1)
    cfg = _cfg(world, "zero-shot", tmp_path / "ft" / "zs")
    cfg.pretrained = str(run)
    summary = finetune(cfg)
    assert summary["test"]["overall"]["status"] == "unsupported"
    assert "cannot score unseen items" in summary["test"]["overall"]["reason"]
    assert "ndcg@10" in summary["most_popular"]["overall"]
    md = transfer_report(tmp_path / "ft").read_text()
    assert "cannot score" in md


def test_cli_finetune_and_report(world: dict[str, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scalerec.cli import app

    runner = CliRunner()
    out = tmp_path / "cli" / "zs"
    res = runner.invoke(app, ["finetune", "--from", str(world["run"]), "--data", str(world["target"]),
                              "--strategy", "zero-shot", "--out", str(out), "--set", "n_boot=20",
                              "--set", "tracking_uri=off"])
    assert res.exit_code == 0, res.output
    assert "NDCG@10" in res.output and (out / "transfer.json").is_file()
    res = runner.invoke(app, ["transfer-report", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cli" / "transfer_report.md").is_file()
    res = runner.invoke(app, ["finetune", "--from", str(world["run"]), "--data", str(world["target"]),
                              "--strategy", "nope"])
    assert res.exit_code != 0 and "is not one of" in str(res.exception)  # cli.main prints it, exit 2


def test_bad_inputs_are_user_errors(world: dict[str, Path], tmp_path: Path) -> None:
    from scalerec.errors import UserError

    with pytest.raises(UserError, match="final.json"):
        finetune(load(FinetuneConfig, overrides=[f"pretrained={tmp_path}", f"data={world['target']}"]))
    with pytest.raises(UserError, match="target dataset"):
        finetune(load(FinetuneConfig, overrides=[f"pretrained={world['run']}", f"data={tmp_path}"]))
    with pytest.raises(UserError):
        load(FinetuneConfig, overrides=["epochs=-1"])


def test_frozen_configs_parse() -> None:
    root = Path(__file__).resolve().parents[2] / "configs" / "transfer"
    files = sorted(root.glob("*.toml"))
    assert files
    for path in files:
        cfg = load(FinetuneConfig, toml=path)
        assert cfg.strategy in path.stem or path.stem.startswith("full")


@pytest.mark.parametrize(("min_epochs", "expected"), [(0, 3), (6, 6)])
def test_early_stopping_waits_for_min_epochs(world: dict[str, Path], min_epochs: int, expected: int) -> None:
    """A validation score that never improves after epoch 0 stops the run after `patience` more epochs,
    but not before `min_epochs`: a slow start on a few-step epoch is not convergence."""
    from scalerec.rundir import load_run
    from scalerec.train.negatives import popularity_sampler
    from scalerec.train.padded import TrainBatches
    from scalerec.transfer.finetune import load_domain
    from scalerec.transfer.loop import LoopSettings, run_stages
    from scalerec.transfer.strategies import PlanSettings, make_plan

    model = load_run(world["run"]).model
    dom = load_domain(world["source"], world["tokens"])
    plan = make_plan("full", model, PlanSettings(epochs=10, lr=1e-3))
    settings = LoopSettings(8, 0.0, "constant", 0.0, 2, "cpu", 0, min_epochs=min_epochs)
    result = run_stages(model, plan.stages, TrainBatches(dom.split.train, 12, 16, seed=0),
                        popularity_sampler(dom.popularity), lambda m: 0.0, settings)
    assert len(result.curve) == expected and result.stopped_early and result.best_epoch == 0


def test_wall_clock_budget_ends_the_loop_with_its_best_weights(world: dict[str, Path], monkeypatch) -> None:
    """Past `max_minutes` the loop ends at its next validation, flagged `stopped_by_time`, keeping the best
    epoch: a time-boxed cell on a shared GPU ends with a result instead of being killed."""
    from scalerec.rundir import load_run
    from scalerec.train.negatives import popularity_sampler
    from scalerec.train.padded import TrainBatches
    from scalerec.transfer import loop
    from scalerec.transfer.finetune import load_domain
    from scalerec.transfer.loop import LoopSettings, run_stages
    from scalerec.transfer.strategies import PlanSettings, make_plan

    now = [0.0]  # a fake clock that each validation moves 40 s on
    monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])
    model = load_run(world["run"]).model
    dom = load_domain(world["source"], world["tokens"])
    plan = make_plan("full", model, PlanSettings(epochs=10, lr=1e-3))
    settings = LoopSettings(8, 0.0, "constant", 0.0, 0, "cpu", 0, max_minutes=1.0)
    scores = iter([0.3, 0.1, 0.2])

    def validate(m) -> float:
        now[0] += 40.0
        return next(scores)

    result = run_stages(model, plan.stages, TrainBatches(dom.split.train, 12, 16, seed=0),
                        popularity_sampler(dom.popularity), validate, settings)
    assert result.stopped_by_time and not result.stopped_early
    assert len(result.curve) == 2 and result.best_epoch == 0  # 40 s: go on; 80 s > 60 s: stop


@pytest.mark.parametrize("strategy", ["full", "progressive"])
def test_a_run_stopped_by_the_clock_resumes_as_if_never_stopped(
    world: dict[str, Path], tmp_path: Path, monkeypatch, strategy: str
) -> None:
    """A time-boxed run cut every 2 epochs and resumed twice from its saved state ends with the same
    weights, validation curve and step count as the same run left uninterrupted: cells cut at different
    points of a shared GPU's load end like-for-like. The state file is gone once the run is complete."""
    import torch

    from scalerec.rundir import load_run
    from scalerec.train.negatives import popularity_sampler
    from scalerec.train.padded import TrainBatches
    from scalerec.transfer import loop
    from scalerec.transfer.finetune import load_domain
    from scalerec.transfer.loop import LoopSettings, run_stages
    from scalerec.transfer.strategies import PlanSettings, make_plan

    dom = load_domain(world["source"], world["tokens"])
    now = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])

    def validate(m) -> float:  # a score that depends on the weights, so the curves compare training
        now[0] += 40.0
        return float(sum(p.detach().double().sum() for p in m.parameters()))

    def run(max_minutes: float | None, resume: Path | None):
        torch.manual_seed(1)  # a fresh process: the global generator starts from the same seed
        model = load_run(world["run"]).model
        plan = make_plan(strategy, model, PlanSettings(epochs=6, lr=1e-3))
        settings = LoopSettings(8, 0.0, "constant", 0.0, 0, "cpu", 0, max_minutes=max_minutes,
                                resume_path=str(resume) if resume else None)
        result = run_stages(model, plan.stages, TrainBatches(dom.split.train, 12, 16, seed=0),
                            popularity_sampler(dom.popularity), validate, settings)
        return model, result

    whole_model, whole = run(None, None)
    state = tmp_path / "cell.resume.pt"
    parts = []
    for _ in range(10):
        now[0] = 0.0
        model, result = run(1.0, state)  # 40 s: go on; 80 s > 60 s: stop after 2 epochs
        parts.append(len(result.curve))
        if not result.stopped_by_time:
            break
        assert state.is_file()
    assert len(parts) > 2 and parts[-1] == len(whole.curve)  # cut at least twice, then complete
    assert not state.exists()
    assert [c["valid/ndcg@10"] for c in result.curve] == [c["valid/ndcg@10"] for c in whole.curve]
    assert result.steps == whole.steps and result.targets_seen == whole.targets_seen
    assert result.best_epoch == whole.best_epoch
    for a, b in zip(model.state_dict().values(), whole_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_finetune_cut_by_the_clock_continues_when_run_again(world: dict[str, Path], tmp_path: Path) -> None:
    """The command-level contract: a fine-tuning run stopped by `max_minutes` leaves its state beside `out`;
    the same command run again continues it (its curve grows from where it stopped) until it ends, and
    then no state is left."""
    from scalerec.transfer.finetune import resume_path

    out = tmp_path / "ft"
    cfg = _cfg(world, "full", out, epochs=4, patience=0, max_minutes=1e-9)  # every epoch is past the clock
    lengths = []
    for _ in range(6):
        summary = finetune(cfg)
        lengths.append(len(summary["curve"]))
        if not summary["stopped_by_time"]:
            break
        assert resume_path(out).is_file()
    assert lengths == [1, 2, 3, 4] and not resume_path(out).exists()
    assert summary["steps"] == 12  # 4 epochs of 3 batches, as one uninterrupted run
    other = tmp_path / "ft2"  # cut once, then the command without the cap finishes the same run
    assert finetune(_cfg(world, "full", other, epochs=4, patience=0, max_minutes=1e-9))["stopped_by_time"]
    summary = finetune(_cfg(world, "full", other, epochs=4, patience=0))
    assert len(summary["curve"]) == 4 and summary["steps"] == 12 and not resume_path(other).exists()


def test_a_saved_state_is_not_continued_from_other_starting_weights(
    world: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    """A cut run's state is continued only by a run that starts from the same weights: once the pretrained
    checkpoint has changed (an extended pretraining run found better weights), the fine-tuning cell starts
    over instead of continuing a run that began from the old checkpoint."""
    import torch

    from scalerec.rundir import load_run
    from scalerec.train.negatives import popularity_sampler
    from scalerec.train.padded import TrainBatches
    from scalerec.transfer import loop
    from scalerec.transfer.finetune import load_domain
    from scalerec.transfer.loop import LoopSettings, run_stages
    from scalerec.transfer.strategies import PlanSettings, make_plan

    dom = load_domain(world["source"], world["tokens"])
    now = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])

    def validate(m) -> float:
        now[0] += 40.0
        return 0.0

    state = tmp_path / "cell.resume.pt"

    def run(nudge: float):
        now[0] = 0.0
        model = load_run(world["run"]).model
        with torch.no_grad():
            next(model.parameters()).add_(nudge)  # another version of the pretrained weights
        plan = make_plan("full", model, PlanSettings(epochs=6, lr=1e-3))
        settings = LoopSettings(8, 0.0, "constant", 0.0, 0, "cpu", 0, max_minutes=1.0, resume_path=str(state))
        return run_stages(model, plan.stages, TrainBatches(dom.split.train, 12, 16, seed=0),
                          popularity_sampler(dom.popularity), validate, settings)

    assert len(run(0.0).curve) == 2 and state.is_file()  # cut after 2 epochs
    assert len(run(0.0).curve) == 4  # same start: continued
    with pytest.warns(UserWarning, match="starting weights; starting over"):
        assert len(run(0.5).curve) == 2  # other start: over again
