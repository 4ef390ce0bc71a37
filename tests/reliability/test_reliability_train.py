"""Issue 22, training side: a re-run never destroys the run that was there, concurrent writers are
refused, a diverged run stops with one sentence, and every JSON file a run writes is strict JSON."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import pytest
import torch

from scalerec.config import load
from scalerec.errors import UserError
from scalerec.train import outputs, train
from scalerec.train.config import RunConfig, resolve_run_config
from scalerec.train.tracking import MetricsLog


def _load_write_world():
    """The training tests' tiny world, loaded by path: test dirs are not packages, and a second
    conftest.py here would shadow the `conftest` module other test files import by name."""
    path = Path(__file__).resolve().parents[1] / "train" / "conftest.py"
    spec = importlib.util.spec_from_file_location("scalerec_train_world", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_world


@pytest.fixture(scope="module")
def train_world(tmp_path_factory) -> tuple[Path, Path]:
    return _load_write_world()(tmp_path_factory.mktemp("world"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cfg_for(world, out, name, *extra) -> RunConfig:
    data, tokens = world
    base = [
        f"data.dataset={data}",
        f"data.tokens={tokens}",
        "data.max_len=8",
        f"run.out={out}",
        f"run.name={name}",
        "run.tracking_uri=off",
        "run.progress=false",
        "train.max_steps=4",
        "train.batch_size=16",
        "train.negatives=16",
        "eval.every_steps=2",
        "train.lr=3e-3",
    ]
    return resolve_run_config(overrides=base + list(extra), size="tiny")


def strict_json(text: str):
    """json.loads that refuses NaN/Infinity tokens (what Python writes by default, not JSON)."""

    def bad(token: str):
        raise ValueError(f"non-JSON token {token}")

    return json.loads(text, parse_constant=bad)


def snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


# -- outputs: refuse, overwrite only after the new run finished, one writer --------------------------


def test_rerun_with_same_name_refuses_and_keeps_the_run(train_world, tmp_path):
    first = train(cfg_for(train_world, tmp_path, "r"))
    before = snapshot(first.run_dir)
    with pytest.raises(UserError, match="--resume .*--overwrite"):
        train(cfg_for(train_world, tmp_path, "r"))
    assert snapshot(first.run_dir) == before


def test_overwrite_keeps_old_run_until_new_one_finished(train_world, tmp_path, monkeypatch):
    from scalerec.train import trainer

    first = train(cfg_for(train_world, tmp_path, "o"))
    before = snapshot(first.run_dir)

    def crash(rt):
        raise RuntimeError("killed during the final evaluation")

    monkeypatch.setattr(trainer, "_finish", crash)
    with pytest.raises(RuntimeError):
        train(cfg_for(train_world, tmp_path, "o", "train.max_steps=6"), overwrite=True)
    assert snapshot(first.run_dir) == before  # the crash left the old run whole
    monkeypatch.undo()
    second = train(cfg_for(train_world, tmp_path, "o", "train.max_steps=6"), overwrite=True)
    assert second.run_dir == first.run_dir and second.final["steps"] == 6
    assert json.loads((first.run_dir / "final.json").read_text())["steps"] == 6
    assert json.loads((first.run_dir / "final.json").read_text())["name"] == "o"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.") and p.is_dir()]
    assert leftovers == []  # staging dir swapped in, replaced run removed


def test_resume_and_overwrite_exclude_each_other(train_world, tmp_path):
    with pytest.raises(UserError, match="exclude"):
        train(cfg_for(train_world, tmp_path, "x"), resume=True, overwrite=True)


def test_unrelated_folder_is_not_taken_over(train_world, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a run dir"):
        train(cfg_for(train_world, tmp_path, "mine"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_concurrent_writer_gets_a_lock_error(train_world, tmp_path):
    held = outputs.claim(tmp_path / "busy", resume=False, overwrite=False)
    try:
        with pytest.raises(UserError, match="another `scalerec train`.*is writing"):
            train(cfg_for(train_world, tmp_path, "busy"))
    finally:
        held.release()
    assert train(cfg_for(train_world, tmp_path, "busy", "train.max_steps=2")).completed  # lock freed


def test_cli_overwrite_flag(train_world, tmp_path, capsys):
    from scalerec.cli import main

    data, tokens = train_world
    args = [
        "train",
        "--data",
        str(data),
        "--tokens",
        str(tokens),
        "--size",
        "tiny",
        "--out",
        str(tmp_path),
        "--name",
        "c",
        "--tracking-uri",
        "off",
        "--set",
        "train.max_steps=2",
        "--set",
        "data.max_len=8",
        "--set",
        "run.progress=false",
        "--set",
        "train.batch_size=16",
    ]

    def run(extra: list[str]) -> int:
        with pytest.raises(SystemExit) as exc:
            main(args + extra)
        return exc.value.code

    assert run([]) == 0
    assert run([]) == 2 and "--overwrite" in capsys.readouterr().err
    assert run(["--overwrite"]) == 0
    assert (tmp_path / "c" / "final.json").is_file()


# -- numerics: a diverged run stops with one sentence; JSON stays strict ------------------------------


@pytest.mark.parametrize(
    ("extra", "cause"),
    [
        (("train.lr=1.0", "train.temperature=1e-4"), "train.lr"),
        (("train.temperature=1e-7",), "train.temperature"),
    ],
)
def test_diverged_run_stops_with_one_line(train_world, tmp_path, extra, cause):
    """NaN/inf values are refused at load (tests/reliability/test_reliability_config.py); a valid
    config can still diverge, and the run must stop with one sentence naming the likely cause."""
    with pytest.raises(UserError) as exc:
        train(cfg_for(train_world, tmp_path, "nan", "train.loss=sampled", "train.log_every=2", *extra))
    msg = str(exc.value)
    assert "\n" not in msg and "diverged" in msg and "step" in msg and cause in msg
    run = tmp_path / "nan"
    assert not (run / "final.json").exists()  # never scored, never "best"
    for line in (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []:
        strict_json(line)


def test_lr_typo_1e3_is_refused_before_training(train_world, tmp_path):
    """`--set train.lr=1e3` (for 1e-3) gave NDCG@10 = 1.0 before; now it never starts."""
    with pytest.raises(UserError, match=r"train.lr"):
        train(cfg_for(train_world, tmp_path, "typo", "train.lr=1e3"))
    assert not (tmp_path / "typo").exists()


def test_metrics_lines_never_hold_nan_tokens(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write({"step": 1, "train/loss": float("nan"), "train/lr": float("inf"), "ok": 1.0})
    rec = strict_json((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert rec["train/loss"] is None and rec["train/lr"] is None and rec["ok"] == 1.0
    assert rec["nonfinite"] == ["train/loss", "train/lr"]


def test_final_json_is_strict(train_world, tmp_path):
    s = train(cfg_for(train_world, tmp_path, "strict"))
    strict_json((s.run_dir / "final.json").read_text())
    for line in (s.run_dir / "metrics.jsonl").read_text().splitlines():
        strict_json(line)


# -- resume after kill -9 mid-write ------------------------------------------------------------------


def test_resume_tolerates_a_cut_last_metrics_line(train_world, tmp_path):
    part = train(cfg_for(train_world, tmp_path, "cut", "train.max_steps=6", "train.stop_after_steps=2"))
    with open(part.run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"step": 3, "train/lo')  # what kill -9 during a write leaves
    resumed = train(load(RunConfig, toml=part.run_dir / "config.toml"), resume=True)
    assert resumed.completed
    steps = [strict_json(x)["step"] for x in (resumed.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 6


def test_garbled_middle_line_is_a_clear_error(train_world, tmp_path):
    part = train(cfg_for(train_world, tmp_path, "garbled", "train.max_steps=6", "train.stop_after_steps=2"))
    path = part.run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["{oops", *lines]) + "\n")
    with pytest.raises(UserError, match=r"metrics.jsonl:1: not a JSON line"):
        train(load(RunConfig, toml=part.run_dir / "config.toml"), resume=True)


def test_non_finite_weights_are_refused_before_scoring():
    from scalerec.train import numerics

    model = torch.nn.Linear(3, 2)
    numerics.check_weights(model, 5, "cause")  # finite: no error
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(UserError, match="non-finite after step 5"):
        numerics.check_weights(model, 5, "train.lr=inf is far too large")


def test_likely_cause_names_the_field():
    from scalerec.train.numerics import likely_cause

    assert "train.lr" in likely_cause(1e3, 1.0, 1.0)
    assert "train.temperature" in likely_cause(1e-3, float("nan"), 1.0)
    assert "train.sampler_alpha" in likely_cause(1e-3, 1.0, float("nan"))
    assert "train.lr" in likely_cause(1e-3, 1.0, 1.0)  # nothing odd: still a hint where to look


@pytest.mark.parametrize("z_loss, warned", [(0.0, 1), (1e-4, 0)])
def test_a_drifting_logit_offset_under_bf16_is_reported_once(
    train_world, tmp_path, monkeypatch, z_loss, warned
):
    """A bf16 run whose logits' common offset passes the threshold is warned once (the packed bf16 text
    model's offset drifted to ~100-250 and its training stalled); a run with a z-loss, which holds the
    offset, is not. The threshold is lowered so the tiny world's offsets cross it at every evaluation."""
    from scalerec.train import numerics

    monkeypatch.setattr(numerics, "LOGIT_OFFSET_WARN", 0.0)
    cfg = cfg_for(train_world, tmp_path, f"drift{z_loss}", "train.precision=bf16", f"train.z_loss={z_loss}")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        train(cfg)
    drift = [w for w in seen if "common offset has reached" in str(w.message)]
    assert len(drift) == warned
    if warned:
        assert "train.z_loss" in str(drift[0].message)


@pytest.mark.parametrize("packing, expected", [("on", 1e-4), ("off", 0.0)])
def test_a_packed_bf16_run_gets_the_auto_z_loss_and_its_config_records_it(
    train_world, tmp_path, packing, expected
):
    """The default z-loss is decided when the run starts, from its real layout and precision, and written to
    the run's config.toml, so the record says what the run did and a resume does the same."""
    cfg = cfg_for(train_world, tmp_path, f"z{packing}", "train.precision=bf16", f"train.packing={packing}")
    assert cfg.train.z_loss is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny world's drift warning is not what this test checks
        run = train(cfg)
    assert load(RunConfig, toml=run.run_dir / "config.toml").train.z_loss == expected


def test_the_logit_offset_warning_needs_low_precision_and_a_large_offset():
    from scalerec.train.numerics import LOGIT_OFFSET_WARN, logit_offset_warning

    big = 2 * LOGIT_OFFSET_WARN
    assert logit_offset_warning(big, True, 0.0) is not None
    assert logit_offset_warning(-big, True, 0.0) is not None  # the offset may drift either way
    assert logit_offset_warning(big, False, 0.0) is None  # fp32: rounding is 2^16 times finer
    assert logit_offset_warning(big, True, 1e-4) is None  # the z-loss holds it
    assert logit_offset_warning(LOGIT_OFFSET_WARN / 2, True, 0.0) is None
    assert logit_offset_warning(None, True, 0.0) is None  # no logit statistics (e.g. no validation users)
