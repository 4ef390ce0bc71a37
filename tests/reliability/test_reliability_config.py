"""Issue 22, config abuse: every bad numeric value is one line naming the key (exit 2), checked
when the config is loaded; sizes that cannot fit the device are refused before allocating, with
the estimate in the message; output dirs that would replace the user's folders are refused."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest

from scalerec import memory
from scalerec.config import check_ranges, load
from scalerec.errors import UserError
from scalerec.model.config import ModelConfig
from scalerec.train.config import RunConfig, resolve_run_config


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the console entry point (which maps user errors to one line, exit 2)."""
    from scalerec.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err

BAD_RUN_VALUES = [
    ("train.lr=nan", "train.lr"),
    ("train.lr=inf", "train.lr"),
    ("train.lr=-1", "train.lr"),
    ("train.lr=1e3", "train.lr"),  # a plausible typo for 1e-3
    ("train.batch_size=nan", "train.batch_size"),
    ("train.batch_size=inf", "train.batch_size"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.epochs=-1", "train.epochs"),
    ("train.max_steps=-5", "train.max_steps"),
    ("train.weight_decay=-1", "train.weight_decay"),
    ("train.temperature=nan", "train.temperature"),
    ("train.temperature=0", "train.temperature"),
    ("train.sampler_alpha=nan", "train.sampler_alpha"),
    ("train.negatives=0", "train.negatives"),
    ("train.betas=[0.9, 1.5]", "train.betas[1]"),
    ("train.warmup=1", "train.warmup"),
    ("train.max_flops=inf", "train.max_flops"),
    ("model.init_std=nan", "model.init_std"),
    ("model.init_std=0", "model.init_std"),
    ("model.dropout=1", "model.dropout"),
    ("model.dropout=-0.1", "model.dropout"),
    ("model.d_model=0", "model.d_model"),
    ("model.field_max_len={title=0}", "model.field_max_len.title"),
    ("eval.ks=[0, 10]", "eval.ks[0]"),
    ("eval.max_users=0", "eval.max_users"),
    ("data.max_len=0", "data.max_len"),
    ("run.seed=-1", "run.seed"),
]


@pytest.mark.parametrize(("override", "key"), BAD_RUN_VALUES)
def test_bad_run_value_names_the_key(override: str, key: str) -> None:
    with pytest.raises(UserError) as info:
        resolve_run_config(overrides=["data.dataset=x", override])
    message = str(info.value)
    assert key in message and "\n" not in message


@pytest.mark.parametrize(("override", "key"), BAD_RUN_VALUES[:6])
def test_cli_exits_2_with_one_line(override: str, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _cli(["train", "--data", "x", "--set", override], capsys)
    assert code == 2
    assert key in output and "Traceback" not in output


def test_unset_optional_values_pass() -> None:
    cfg = resolve_run_config(overrides=["data.dataset=x", "train.epochs=0.5", "eval.max_users=none"])
    assert cfg.train.epochs == 0.5 and cfg.eval.max_users is None


def test_programmatic_configs_are_checked_too() -> None:
    from scalerec.train.config import TrainConfig

    with pytest.raises(UserError, match="train.lr"):
        TrainConfig(lr=float("nan"))


def _numeric_fields(cls: type, prefix: str) -> list[tuple[str, dataclasses.Field[Any]]]:
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        where = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(tp):
            out += _numeric_fields(tp, where)  # type: ignore[arg-type]
        elif any(t in (int, float) for t in (tp, *typing.get_args(tp), *_inner_args(tp))):
            out.append((where, f))
    return out


def _inner_args(tp: Any) -> tuple[Any, ...]:
    return tuple(a for arg in typing.get_args(tp) for a in typing.get_args(arg))


# numbers whose whole finite range is meaningful (non-finite values are refused for every field)
ANY_FINITE = {"train:train.sampler_alpha", "finetune:neg_alpha"}


def test_every_numeric_config_field_declares_a_range() -> None:
    from scalerec.commands.config import STAGES, stage_config

    missing = set()
    for stage in STAGES:
        cls = type(stage_config(stage))
        missing |= {f"{stage}:{where}" for where, f in _numeric_fields(cls, "") if "range" not in f.metadata}
    assert missing == ANY_FINITE


def test_defaults_satisfy_their_ranges() -> None:
    check_ranges(RunConfig())
    check_ranges(ModelConfig())


@pytest.mark.parametrize(
    ("stage", "override", "key"),
    [
        ("transfer", "lr=nan", "lr"),
        ("transfer", "batch_size=inf", "batch_size"),
        ("data", "k_core=nan", "k_core"),
        ("text", "vocab_size=2000000000", "vocab_size"),
        ("sweep", "est_flops_per_s=nan", "est_flops_per_s"),
        ("sweep", "est_flops_per_s=0", "est_flops_per_s"),
        ("transfer", "weight_decay=-1", "weight_decay"),
        ("serve", "index.target_recall=2", "index.target_recall"),
        ("data", "shards=4096", "shards"),
    ],
)
def test_other_stage_configs(stage: str, override: str, key: str) -> None:
    if stage == "transfer":
        from scalerec.transfer.finetune import FinetuneConfig as cls
    elif stage == "data":
        from scalerec.data.build.config import PrepareConfig as cls  # type: ignore[assignment]
    elif stage == "text":
        from scalerec.text import TextConfig as cls  # type: ignore[assignment]
    elif stage == "serve":
        from scalerec.serve.recommender import ServeConfig as cls  # type: ignore[assignment]
    else:
        from scalerec.scaling.spec import SweepSpec as cls  # type: ignore[assignment]
    overrides = [override] + (["epochs=1"] if stage == "sweep" else [])
    with pytest.raises(UserError, match=key):
        load(cls, overrides=overrides)


# -- memory estimates before allocation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "part"),
    [("model.d_model=1000000", "parameters"), ("model.d_ffn=1e8", "parameters"),
     ("train.negatives=1e9", "logits")],
)
def test_training_sizes_that_cannot_fit_are_refused(override: str, part: str) -> None:
    cfg = resolve_run_config(overrides=["data.dataset=x", "model.n_heads=1", override], size="xs")
    mcfg = dataclasses.replace(cfg.model, vocab_size=30000, max_len=50)
    t = cfg.train
    pattern = rf"mostly {part}.*needs at least [\d,.]+ GiB but cpu has .* GiB free"
    with pytest.raises(UserError, match=pattern):
        memory.check_training(mcfg, t.batch_size, t.targets, t.loss, t.negatives, t.shared_negatives,
                              1000, "cpu")


def test_default_training_size_fits() -> None:
    cfg = resolve_run_config(overrides=["data.dataset=x"], size="xs")
    mcfg = dataclasses.replace(cfg.model, vocab_size=30000)
    t = cfg.train
    memory.check_training(mcfg, t.batch_size, t.targets, t.loss, t.negatives, t.shared_negatives, 1000, "cpu")


def test_estimate_counts_parameters_exactly() -> None:
    import torch

    from scalerec.model import SequentialRecommender

    mcfg = ModelConfig(vocab_size=100, d_model=32, d_ffn=64, n_heads=2)
    n = sum(p.numel() for p in SequentialRecommender(mcfg).parameters())
    parts = memory.training_bytes(mcfg, 4, "all", "sampled", 10, True, 50)
    assert parts["parameters and optimizer"] == 16 * n
    assert parts["logits"] == 2 * 4 * (4 * mcfg.max_len) * 11
    assert torch.is_tensor(torch.zeros(1))


def test_sampled_evaluation_too_large_is_refused() -> None:
    import numpy as np

    from scalerec.eval.sampled import sample_negatives

    with pytest.raises(UserError, match="sampled evaluation .*1,000,000,000 negatives.*GiB"):
        sample_negatives(np.ones(1000, dtype=np.int64), 50, n_negatives=1_000_000_000)


def test_synth_bad_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "raw")
    for args, says in ((["--items", "-5"], "--items"), (["--interactions", "1000000000000"], "GiB")):
        code, output = _cli(["data", "synth", "--interactions", "100", "--out", out, *args], capsys)
        assert code == 2, output
        assert says in output and "Traceback" not in output
    assert not Path(out).exists()


def test_text_train_huge_vocab_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["text", "train", "--data", str(tmp_path), "--out", str(tmp_path / "t")]
    args += ["--vocab-size", "2000000000"]
    code, output = _cli(args, capsys)
    assert code == 2 and "vocab_size" in output


# -- output dirs that would destroy the user's folders ------------------------------------------


@pytest.mark.parametrize("out", [".", "..", "/"])
@pytest.mark.parametrize(
    "command",
    [["data", "synth", "--interactions", "100"], ["data", "prepare", "--ratings", "r.csv"],
     ["text", "train", "--data", "d"], ["finetune", "--from", "p", "--data", "d"]],
)
def test_out_dir_that_holds_the_cwd_is_refused(
    command: list[str], out: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    (work / "keep.txt").write_text("mine")
    monkeypatch.chdir(work)
    code, output = _cli([*command, "--out", out], capsys)
    assert code == 2, output
    assert "--out" in output and "refusing" in output
    assert (work / "keep.txt").read_text() == "mine"


def test_every_committed_config_passes_validation() -> None:
    """The declared ranges accept every experiment committed under configs/."""
    from scalerec.data.build.config import PrepareConfig
    from scalerec.scaling.spec import load_spec
    from scalerec.transfer.finetune import FinetuneConfig

    root = Path(__file__).resolve().parents[2] / "configs"
    files = {kind: sorted((root / kind).glob("*.toml")) for kind in ("train", "sweeps", "data", "transfer")}
    assert all(files.values())
    for path in files["train"]:
        resolve_run_config(path)
    for path in files["sweeps"]:
        load_spec(path)
    for path in files["data"]:
        load(PrepareConfig, toml=path)
    for path in files["transfer"]:
        load(FinetuneConfig, toml=path)
