"""Run files are never trusted blindly: damaged, swapped or unfinished runs get a one-line error (exit 2).

Each case damages a copy of one trained run the way the reliability audit did (issue 22, item 5)
and checks `load_run` (serve, recommend, finetune), `scalerec evaluate` and resume.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rundir_world import train_tiny, write_world

from scalerec.errors import UserError
from scalerec.rundir import load_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rundir_world")
    write_world(root)
    return train_tiny(root, "base")


@pytest.fixture()
def run(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained run (same dataset and token table)."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _edit_meta(run: Path, fn: Callable[[dict], object]) -> None:
    meta = json.loads((run / "meta.json").read_text())
    out = fn(meta)
    (run / "meta.json").write_text(json.dumps(meta if out is None else out))


def _flip_bytes(path: Path, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(len(data), mid + n)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    from scalerec.cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "Traceback" not in err
    return " ".join(err.split())


def _no_hash(meta: dict) -> None:
    meta.pop("model_sha256")


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "flipped weights": (lambda r: _flip_bytes(r / "model.safetensors"), "does not match the SHA-256"),
    "truncated weights, no hash": (
        lambda r: (_edit_meta(r, _no_hash), (r / "model.safetensors").write_bytes(
            (r / "model.safetensors").read_bytes()[:100])), "not a readable safetensors"),
    "garbage weights, no hash": (
        lambda r: (_edit_meta(r, _no_hash), (r / "model.safetensors").write_bytes(b"\x00garbage" * 50)),
        "not a readable safetensors"),
    "weights missing": (lambda r: (r / "model.safetensors").unlink(), "model.safetensors: not found"),
    "meta null": (lambda r: (r / "meta.json").write_text("null"), "expected a JSON object"),
    "meta invalid": (lambda r: (r / "meta.json").write_text('{"format_version": 1,'), "not valid JSON"),
    "meta missing": (lambda r: (r / "meta.json").unlink(), "meta.json: not found"),
    "meta without model_config": (
        lambda r: _edit_meta(r, lambda m: m.pop("model_config") and None), "model_config is missing"),
    "edited d_model": (
        lambda r: _edit_meta(r, lambda m: m["model_config"].update(d_model=48)), "do not fit"),
    "unknown model field": (
        lambda r: _edit_meta(r, lambda m: m["model_config"].update(d_modle=48)), "invalid model_config"),
    "final.json garbage": (lambda r: (r / "final.json").write_text("[1, 2"), "not valid JSON"),
    "unfinished": (lambda r: (r / "final.json").unlink(), "unfinished"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_run_is_a_one_line_error(case: str, run: Path, capsys) -> None:
    damage, message = DAMAGE[case]
    load_run(run)  # fine before, and leaves a hash cache that must not hide the damage
    damage(run)
    with pytest.raises(UserError, match=message):
        load_run(run)
    err = _cli_error(["evaluate", str(run), "--bootstrap", "0", "--sampled", "0", "--device", "cpu"], capsys)
    assert message in err
    assert not (run / "eval.json").exists()


def test_token_table_rebuilt_in_place_is_refused(trained: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "world"
    write_world(root)
    run = train_tiny(root, "tok")
    npz = root / "tokens" / "item_tokens.npz"
    with np.load(npz) as z:
        arrays = dict(z)
    arrays["title"][1:, 0] = arrays["title"][::-1][:-1, 0]  # same shapes, other tokens
    np.savez(npz, **arrays)
    with pytest.raises(UserError, match="token table does not match"):
        load_run(run)
    err = _cli_error(["recommend", str(run), "--history", "1,2"], capsys)
    assert "token table" in err


def test_changed_dataset_is_refused_by_evaluate_and_serve(run: Path, capsys) -> None:
    from scalerec.serve.run_encoder import load_recommender

    meta = json.loads((run / "meta.json").read_text())
    card = Path(meta["dataset_dir"]) / "card.json"
    original = card.read_text()
    try:
        card.write_text(original.replace("60", "61"))
        err = _cli_error(["evaluate", str(run), "--bootstrap", "0", "--sampled", "0"], capsys)
        assert "dataset card does not match" in err
        with pytest.raises(UserError, match="dataset card"):
            load_recommender(run)
    finally:
        card.write_text(original)


def test_unfinished_run_only_with_allow_unfinished(run: Path, capsys) -> None:
    from scalerec.cli import main
    from scalerec.serve.run_encoder import RunEncoder

    (run / "final.json").unlink()
    with pytest.raises(UserError, match="unfinished"):
        RunEncoder(run)
    assert RunEncoder(run, allow_unfinished=True).model is not None
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(run), "--allow-unfinished", "--bootstrap", "0", "--sampled", "0", "--json",
              "--device", "cpu"])
    assert exc.value.code in (0, None)
    assert json.loads(capsys.readouterr().out)["finished"] is False


def test_meta_records_hashes(run: Path) -> None:
    from scalerec.io import sha256_file

    meta = json.loads((run / "meta.json").read_text())
    assert meta["model_sha256"] == sha256_file(run / "model.safetensors")
    assert meta["tokens_sha256"] and meta["dataset_hash"]
    assert meta["model_bytes"] == (run / "model.safetensors").stat().st_size


def test_hash_cache_skips_rehashing_but_not_changes(run: Path, monkeypatch) -> None:
    import scalerec.rundir as rd

    load_run(run)
    assert (run / rd.CACHE_NAME).is_file()
    rd._MEMO.clear()
    calls: list[Path] = []
    real = rd.sha256_file
    monkeypatch.setattr(rd, "sha256_file", lambda p: calls.append(Path(p)) or real(p))
    load_run(run)
    assert calls == []  # size + mtime unchanged: cached hashes reused
    path = run / "model.safetensors"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    load_run(run)
    assert path.resolve() in [p.resolve() for p in calls]


def test_resume_refuses_damaged_files(tmp_path: Path) -> None:
    from scalerec.train.checkpoint import load_state

    root = tmp_path / "world"
    write_world(root)
    run = train_tiny(root, "stop", "train.max_steps=9", "train.stop_after_steps=6")
    assert not (run / "final.json").exists() and load_state(run)["counters"]["step"] == 6
    saved = (run / "model.safetensors").read_bytes()
    _flip_bytes(run / "model.safetensors")
    with pytest.raises(UserError, match="does not match"):
        load_state(run)
    (run / "model.safetensors").write_bytes(saved)
    (run / "state.pt").write_bytes((run / "state.pt").read_bytes()[:200])
    with pytest.raises(UserError, match="state.pt: not a readable"):
        load_state(run)


def test_new_catalog_checks_the_tokenizer_not_the_item_table(tmp_path: Path) -> None:
    """Serving another catalog (`load_recommender(..., tokens_dir=...)`) swaps the item rows: then
    the tokenizer, not the item table, must be the run's own (`tokenizer_sha256` in meta.json)."""
    root = tmp_path / "world"
    _, tokens = write_world(root)
    (tokens / "tokenizer.json").write_text('{"stand-in": "tokenizer v1"}')
    trained = train_tiny(root, "catalog")
    other = tmp_path / "other_catalog_tokens"
    shutil.copytree(tokens, other)
    arrays = dict(np.load(other / "item_tokens.npz"))
    for key in ("title", "title_len"):
        arrays[key] = np.roll(arrays[key], 1, axis=0)
        arrays[key][0] = 0
    np.savez(other / "item_tokens.npz", **arrays)
    with pytest.raises(UserError, match="token table"):
        load_run(trained, tokens_dir=other)  # same catalog expected: another item table is refused
    assert load_run(trained, tokens_dir=other, new_catalog=True).model is not None
    (other / "tokenizer.json").write_text('{"stand-in": "tokenizer v2"}')
    with pytest.raises(UserError, match="tokenizer"):
        load_run(trained, tokens_dir=other, new_catalog=True)


def test_a_study_cell_killed_before_its_first_checkpoint_trains_again(trained: Path) -> None:
    """The transfer study's cells own their run dirs: a cell killed before its first checkpoint
    (config and metrics written, no state.pt) is trained again on the next call instead of failing on
    "already holds a run"; one killed after a checkpoint resumes (as before)."""
    from scalerec.transfer.study.cells import StudySpec
    from scalerec.transfer.study.execute import Context, _train

    root = trained.parent.parent
    cell = root / "runs" / "killed_cell"
    cell.mkdir()
    for name in ("config.toml", "metrics.jsonl"):
        shutil.copy(trained / name, cell / name)
    overrides = [
        f"data.dataset={root / 'data'}", f"data.tokens={root / 'tokens'}", "data.max_len=8",
        f"run.out={root / 'runs'}", "run.name=killed_cell", "run.tracking_uri=off", "run.progress=false",
        "train.max_steps=6", "train.batch_size=16", "train.negatives=16", "eval.every_steps=3",
        "train.lr=3e-3",
    ]
    ctx = Context(StudySpec(), root, {"targets": {}}, "cpu", root)
    final = _train(overrides, "tiny", None, cell, ctx)
    assert final["steps"] == 6 and (cell / "final.json").is_file()
    assert not (root / "runs" / ".killed_cell.overwrite").exists()
