"""The study's training cells (pretraining, tuned baselines) cut by the time box go on through
`scalerec.train.train(extend=True)`, one more box each time the cell runs, and end as the uncut run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from scalerec.train import train
from scalerec.train.config import resolve_run_config
from scalerec.transfer.study.cells import StudySpec
from scalerec.transfer.study.execute import Context, _train
from scalerec.transfer.study.store import continues

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def train_world(tmp_path_factory) -> tuple[Path, Path]:
    """The training tests' tiny world, loaded by path (test dirs are not packages; its helper module
    is imported from its own dir, which pytest puts on sys.path only when it collects that dir)."""
    here = Path(__file__).resolve().parents[1] / "train"
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(here))
        spec = importlib.util.spec_from_file_location("scalerec_train_world_extend", here / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.write_world(tmp_path_factory.mktemp("world"))


def _sets(world, out: Path, name: str) -> list[str]:
    data, tokens = world
    return [f"data.dataset={data}", f"data.tokens={tokens}", "data.max_len=8", f"run.out={out}",
            f"run.name={name}", "run.tracking_uri=off", "run.progress=false", "train.max_steps=12",
            "train.batch_size=16", "train.negatives=16", "eval.every_steps=3", "train.lr=3e-3"]


def test_a_cut_training_cell_is_extended_box_by_box_to_the_uncut_run(train_world, tmp_path):
    full = train(resolve_run_config(None, _sets(train_world, tmp_path, "full"), size="tiny"))
    box = 1e-9  # every box ends at the next validation
    ctx = Context(StudySpec(cell_max_minutes=box), tmp_path, {"targets": {}}, "cpu", tmp_path)
    run_dir = tmp_path / "cut"
    sets = [*_sets(train_world, tmp_path, "cut"), f"train.max_minutes={box}"]
    steps = []
    for _ in range(6):
        final = _train(sets, "tiny", None, run_dir, ctx)
        steps.append(final["steps"])
        row = {"kind": "pretrain", "stopped_by_time": final["stopped_by_time"], "run_dir": str(run_dir)}
        if not continues(row):
            break
    assert steps == [3, 6, 9, 12] and not final["stopped_by_time"]
    for key in ("test", "valid", "best_step", "targets_seen"):
        assert final[key] == full.final[key], key
    off = Context(StudySpec(cell_max_minutes=box, continue_cut=False), tmp_path, {"targets": {}}, "cpu",
                  tmp_path)
    sets2 = [*_sets(train_world, tmp_path, "cut2"), f"train.max_minutes={box}"]
    first = _train(sets2, "tiny", None, tmp_path / "cut2", off)
    again = _train(sets2, "tiny", None, tmp_path / "cut2", off)
    assert first["steps"] == again["steps"] == 3  # continue_cut off: the cut run stands
