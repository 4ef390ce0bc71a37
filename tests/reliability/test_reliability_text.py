"""`scalerec text train --out` never destroys what the user had (issue 22 item 1): an unrelated
folder, a file, the dataset itself, or a previous table when the new build fails; absurd
`--vocab-size` values are a clear error instead of a Rust abort."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalerec.errors import UserError
from scalerec.text import item_tokens
from scalerec.text.item_tokens import build_token_table, load_item_tokens
from scalerec.text.output import output_lock


def _dataset(path: Path, n: int = 20) -> Path:
    path.mkdir(parents=True)
    words = ["red apple", "blue ocean", "green leaf"]
    pq.write_table(
        pa.table(
            {
                "item_id": pa.array(np.arange(1, n + 1), pa.int32()),
                "item_key": [f"A{i}" for i in range(1, n + 1)],
                "title": [f"{words[i % 3]} thing {i}" for i in range(n)],
                "brand": [words[i % 3].split()[0] for i in range(n)],
                "categories": [[words[i % 3].split()[1]] for i in range(n)],
            }
        ),
        path / "items.parquet",
    )
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _main_exit(argv: list[str], capsys) -> tuple[int, str]:
    from scalerec.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code), capsys.readouterr().err


def test_unrelated_folder_as_out_is_an_error_and_untouched(tmp_path: Path, capsys) -> None:
    data = _dataset(tmp_path / "ds")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    before = _snapshot(tmp_path)
    argv = ["text", "train", "--data", str(data), "--out", str(mine), "--vocab-size", "60"]
    code, err = _main_exit(argv, capsys)
    assert code == 2 and "not a token table" in err and "thesis.tex" in err
    assert _snapshot(tmp_path) == before


def test_a_previous_table_holding_a_user_file_is_not_replaced(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "ds")
    out = tmp_path / "tok"
    build_token_table(data, out, vocab_size=60)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="notes.txt"):
        build_token_table(data, out, vocab_size=60)
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_output_overlapping_the_dataset_is_refused(tmp_path: Path, where: str) -> None:
    data = _dataset(tmp_path / "o" / "ds")
    out = {"same": data, "inside": data / "tok", "around": tmp_path / "o"}[where]
    before = _snapshot(tmp_path)
    with pytest.raises(UserError, match="overlaps the input --data"):
        build_token_table(data, out, vocab_size=60)
    assert _snapshot(tmp_path) == before


def test_an_existing_file_as_out_is_an_error_and_kept(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "ds")
    target = tmp_path / "report.pdf"
    target.write_bytes(b"%PDF")
    with pytest.raises(UserError, match="not a folder"):
        build_token_table(data, target, vocab_size=60)
    assert target.read_bytes() == b"%PDF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "report.pdf"]  # no hidden .old copy


def test_a_previous_table_is_replaced_only_by_a_complete_one(tmp_path: Path, monkeypatch) -> None:
    data = _dataset(tmp_path / "ds")
    out = tmp_path / "tok"
    build_token_table(data, out, vocab_size=60)
    old = _snapshot(out)

    def crash(*args, **kwargs) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(item_tokens, "save_item_tokens", crash)
    with pytest.raises(OSError, match="disk full"):
        build_token_table(data, out, vocab_size=40)
    assert _snapshot(out) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "tok"]  # no temp dir, no lock left
    monkeypatch.undo()
    build_token_table(data, out, vocab_size=40)  # a previous output of this stage: replaced
    assert load_item_tokens(out).vocab_size <= 40 and _snapshot(out) != old


def test_a_live_writer_holds_the_output(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "ds")
    out = tmp_path / "tok"
    with output_lock(out), pytest.raises(UserError, match="another process"):
        build_token_table(data, out, vocab_size=60)
    assert not out.exists()


def test_a_killed_writers_lock_is_taken_over(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "ds")
    out = str(tmp_path / "tok")
    code = f"import os; from scalerec.io import take_lock; h = take_lock({out!r}); os._exit(9)"
    subprocess.run([sys.executable, "-c", code], check=False)  # dies holding the lock, file left behind
    assert (tmp_path / ".tok.lock").read_text().isdigit()
    build_token_table(data, tmp_path / "tok", vocab_size=60)
    assert load_item_tokens(tmp_path / "tok").meta["n_items"] == 20
    assert not (tmp_path / ".tok.lock").exists()


@pytest.mark.parametrize("size", ["2000000000", "1000001"])
def test_absurd_vocab_size_is_a_clear_error(tmp_path: Path, capsys, size: str) -> None:
    data = _dataset(tmp_path / "ds")
    argv = ["text", "train", "--data", str(data), "--out", str(tmp_path / "t"), "--vocab-size", size]
    code, err = _main_exit(argv, capsys)
    assert code == 2 and "vocab_size" in err and ("1,000,000" in err or "1000000" in err)
    assert not (tmp_path / "t").exists()


def test_the_manifest_marks_the_output(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "ds")
    out = tmp_path / "tok"
    build_token_table(data, out, vocab_size=60)
    assert set(os.listdir(out)) == {"tokenizer.json", "item_tokens.npz", "token_table.json"}
    assert json.loads((out / "token_table.json").read_text())["format_version"] == 1
