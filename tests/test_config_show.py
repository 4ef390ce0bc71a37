"""`scalerec config show`: every key of every stage's config, with its default and its docstring."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from scalerec.cli import app
from scalerec.commands.config import STAGES, reference_rows
from scalerec.config import to_dict
from scalerec.config_docs import field_docs

runner = CliRunner()


def _leaf_keys(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else k
        is_section = isinstance(v, dict) and k in {"data", "model", "train", "eval", "run", "index"}
        keys |= _leaf_keys(v, key) if is_section else {key}
    return keys


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_key_is_listed_with_a_docstring(stage: str) -> None:
    from scalerec.commands.config import stage_config

    rows = reference_rows(stage)
    assert {r.key for r in rows} == _leaf_keys(to_dict(stage_config(stage)))
    undocumented = [r.key for r in rows if not r.doc]
    assert undocumented == []


def test_field_docs_reads_the_literal_under_each_field() -> None:
    from scalerec.train.config import TrainConfig

    docs = field_docs(TrainConfig)
    assert docs["lr"] == "Peak learning rate."
    assert docs["compile_mode"].startswith("torch.compile mode:") and "\n" in docs["compile_mode"]
    assert "__post_init__" not in docs


def test_size_and_recipe_change_the_defaults_shown() -> None:
    plain = {r.key: r for r in reference_rows("train")}
    paper = {r.key: r for r in reference_rows("train", size="paper-1M", recipe="paper")}
    assert plain["model.d_model"].default == 64 and paper["model.d_model"].default == 256
    assert plain["train.optimizer"].default == "adamw" and paper["train.optimizer"].default == "adam"
    assert paper["train.lr"].range == "(0, 1]" and paper["train.lr"].type == "float"
    assert plain["train.loss"].type == '"auto" | "sampled" | "full" | "bce"'


def test_cli_prints_keys_defaults_and_docs() -> None:
    result = runner.invoke(app, ["config", "show", "--size", "s"])
    assert result.exit_code == 0, result.output
    assert "train.lr = 0.001" in result.output and "Peak learning rate." in result.output
    assert "model.d_model = 128" in result.output and "[train]  Optimisation recipe" in result.output
    as_json = runner.invoke(app, ["config", "show", "finetune", "--json"])
    rows = json.loads(as_json.output)
    assert {"key", "type", "default", "range", "doc"} == set(rows[0])
    assert any(r["key"] == "strategy" and r["default"] == "full" for r in rows)


def test_unknown_stage_and_misplaced_preset_are_user_errors() -> None:
    from scalerec.errors import UserError

    with pytest.raises(UserError, match="unknown stage"):
        reference_rows("nope")
    with pytest.raises(UserError, match="train stage only"):
        reference_rows("serve", size="s")


def test_rows_are_plain_data() -> None:
    for row in reference_rows("data-prepare"):
        json.dumps(dataclasses.asdict(row))
