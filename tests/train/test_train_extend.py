"""`train(extend=True)` / `scalerec train --extend`: a run that its time box stopped goes on from its
state to a larger box, bit-for-bit the run an uncut box gives, and the time-stopped result stays whole
until the longer run has finished (issue 20: pretraining cut by one device call continues in the next)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from test_train_loop import tiny_cfg

from scalerec.config import load
from scalerec.errors import UserError
from scalerec.train import outputs, train
from scalerec.train.checkpoint import load_state
from scalerec.train.config import RunConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LONG = ("train.max_steps=12",)
CUT = "train.max_minutes=1e-9"  # the first validation (step 3) is past the box


def _files(run) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


def _cut(world, tmp_path, name):
    summary = train(tiny_cfg(world, tmp_path, name, *LONG, CUT))
    assert summary.final["stopped_by_time"] and summary.final["steps"] == 3
    return summary


def _extended_cfg(run, *extra) -> RunConfig:
    return load(RunConfig, toml=run / "config.toml", overrides=["train.max_minutes=60", *extra])


def test_extension_equals_the_uncut_run(world, tmp_path):
    full = train(tiny_cfg(world, tmp_path, "full", *LONG))
    cut = _cut(world, tmp_path, "cut")
    longer = train(_extended_cfg(cut.run_dir), extend=True)
    assert longer.completed and longer.run_dir == cut.run_dir
    assert not longer.final["stopped_by_time"] and longer.final["steps"] == full.final["steps"] == 12
    for key in ("test", "valid", "best_step", "targets_seen"):
        assert longer.final[key] == full.final[key], key
    a, b = load_state(full.run_dir)["model"], load_state(longer.run_dir)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    a, b = (load_file(str(r / "model.safetensors")) for r in (full.run_dir, longer.run_dir))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the longer run's config keeps its new box, so a later --resume after a kill keeps it too
    assert load(RunConfig, toml=longer.run_dir / "config.toml").train.max_minutes == 60
    assert not outputs.continue_dir(cut.run_dir).exists()


def test_killed_extension_leaves_the_cut_run_whole_and_goes_on(world, tmp_path):
    full = train(tiny_cfg(world, tmp_path, "full", *LONG))
    cut = _cut(world, tmp_path, "cut")
    before = _files(cut.run_dir)
    part = train(_extended_cfg(cut.run_dir, "train.stop_after_steps=7"), extend=True)
    assert not part.completed and part.run_dir == outputs.continue_dir(cut.run_dir)
    assert _files(cut.run_dir) == before  # the time-stopped result is untouched
    assert json.loads((cut.run_dir / "final.json").read_text())["stopped_by_time"]
    done = train(_extended_cfg(cut.run_dir), extend=True)  # continues the copy from step 7
    assert done.completed and done.final["steps"] == 12 and done.final["test"] == full.final["test"]
    assert not outputs.continue_dir(cut.run_dir).exists()


def test_extend_refuses_what_it_cannot_continue(world, tmp_path):
    ended = train(tiny_cfg(world, tmp_path, "ended"))
    with pytest.raises(UserError, match="ran its whole budget"):
        train(_extended_cfg(ended.run_dir), extend=True)
    cut = _cut(world, tmp_path, "cut")
    before = _files(cut.run_dir)
    with pytest.raises(UserError, match="within the .* minutes the run already trained"):
        train(load(RunConfig, toml=cut.run_dir / "config.toml"), extend=True)  # the same box again
    with pytest.raises(UserError, match="exclude each other"):
        train(_extended_cfg(cut.run_dir), resume=True, extend=True)
    with pytest.raises(UserError, match="continue it with --extend"):
        train(_extended_cfg(cut.run_dir), resume=True)
    assert _files(cut.run_dir) == before
    with pytest.raises(UserError, match="holds none"):
        train(tiny_cfg(world, tmp_path, "never"), extend=True)


def test_cli_extend(world, tmp_path, capsys):
    from scalerec.cli import main

    cut = _cut(world, tmp_path, "cut")
    with pytest.raises(SystemExit) as exc:
        main(["train", "--extend", str(cut.run_dir), "--set", "train.max_minutes=60"])
    assert exc.value.code == 0 and "trained" in capsys.readouterr().out
    final = json.loads((cut.run_dir / "final.json").read_text())
    assert final["steps"] == 12 and not final["stopped_by_time"]
