"""Reliability of `data prepare` (issue 22): junk input is counted or refused in one sentence, and
an output never deletes what the user had.

Each case is one row of the audit: real-world junk in lenient mode (NUL bytes, UTF-16, binary,
over-long keys), the wrong file or format (exit 2 naming the file and the source expected), zero
users kept, and every way `--out` could destroy something (the raw folder, an unrelated folder, a
file, a concurrent writer, a failing rerun over a good dataset).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import scalerec.data.build.rows as rows_mod
from scalerec.data import PrepareConfig, prepare, synthesize
from scalerec.errors import UserError
from scalerec.io import MARKER, check_output, clean_stale_temporaries, output_dir, write_lock

N = 3_000


@pytest.fixture(scope="module")
def raw18(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return synthesize("amazon2018", N, tmp_path_factory.mktemp("raw18"), seed=1)


def _cfg(raw: dict[str, Path], out: Path, **kw) -> PrepareConfig:
    return PrepareConfig(ratings=[raw["ratings"]], meta=[raw["meta"]], out=out, **kw)


def _with_lines(src: Path, dst: Path, extra: list[bytes], at: int = 10) -> Path:
    lines = src.read_bytes().splitlines()
    dst.write_bytes(b"\n".join(lines[:at] + extra + lines[at:]) + b"\n")
    return dst


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------- junk input


def test_nul_byte_line_is_counted_and_skipped(raw18, tmp_path):
    bad = _with_lines(raw18["ratings"], tmp_path / "r.csv", [b"B000\x00X,A1BAD,5.0,1400000000"])
    card = prepare(PrepareConfig(ratings=[bad], meta=[raw18["meta"]], out=tmp_path / "ds"))
    assert card["parse"]["counts"] == {"nul_byte": 1}
    good = prepare(_cfg(raw18, tmp_path / "ref"))
    assert card["n_interactions"] == good["n_interactions"]


def test_nul_byte_in_json_reviews_is_counted(tmp_path):
    raw = synthesize("amazon2014", N, tmp_path / "raw14", seed=2)
    src = raw["reviews"] if "reviews" in raw else raw["ratings"]
    lines = (
        gzip.decompress(src.read_bytes()).splitlines()
        if src.suffix == ".gz"
        else src.read_bytes().splitlines()
    )
    lines.insert(5, b'{"reviewerID": "A\x00B", "asin": "X", "overall": 5.0, "unixReviewTime": 1}')
    bad = tmp_path / "reviews.json"
    bad.write_bytes(b"\n".join(lines) + b"\n")
    card = prepare(PrepareConfig(source="amazon2014", ratings=[bad], meta=[raw["meta"]], out=tmp_path / "ds"))
    assert card["parse"]["counts"].get("nul_byte") == 1


@pytest.mark.parametrize("encoding", ["utf-16", "binary"])
def test_file_in_another_encoding_or_binary_exits_2_naming_it(raw18, tmp_path, encoding):
    text = raw18["ratings"].read_text()
    path = tmp_path / "ratings.csv"
    if encoding == "utf-16":
        path.write_bytes(text.encode("utf-16"))
    else:
        path.write_bytes(os.urandom(200_000))
    with pytest.raises(UserError, match=r"ratings\.csv: .*amazon2018 interactions"):
        prepare(PrepareConfig(ratings=[path], meta=[raw18["meta"]], out=tmp_path / "ds"))
    assert not (tmp_path / "ds").exists()


def test_over_long_key_is_a_counted_bad_line_and_never_hashed(raw18, tmp_path, monkeypatch):
    """A 1 MB user key costs one bad line, not a per-byte hashing loop over a megabyte."""
    longest = []
    real = rows_mod.stable_hash64

    def spy(keys, seed):
        longest.append(int(keys.str.len_bytes().max() or 0))
        return real(keys, seed)

    monkeypatch.setattr(rows_mod, "stable_hash64", spy)
    bad = _with_lines(
        raw18["ratings"], tmp_path / "r.csv", [b"B0001,A" + b"x" * (1 << 20) + b",5.0,1400000000"]
    )
    card = prepare(PrepareConfig(ratings=[bad], meta=[raw18["meta"]], out=tmp_path / "ds"))
    assert card["parse"]["counts"] == {"key_too_long": 1}
    assert longest and max(longest) <= rows_mod.MAX_KEY_BYTES


def test_one_bad_line_in_a_good_file_is_still_lenient(raw18, tmp_path):
    bad = _with_lines(raw18["ratings"], tmp_path / "r.csv", [b"\xff\xfe garbage"])
    card = prepare(PrepareConfig(ratings=[bad], meta=[raw18["meta"]], out=tmp_path / "ds"))
    assert card["parse"]["counts"] == {"non_utf8": 1}


# ------------------------------------------------------------------------- wrong files, 0 users


@pytest.mark.parametrize("source", ["movielens", "amazon2023"])
def test_wrong_source_exits_2_naming_file_and_source(raw18, tmp_path, source):
    files = f"({raw18['ratings'].name}|{raw18['meta'].name})"
    with pytest.raises(UserError, match=rf"{files}: .*could.*be read as {source} (interactions|item table)"):
        prepare(_cfg(raw18, tmp_path / "ds", source=source))


def test_wrong_column_order_exits_2_through_zero_users(raw18, tmp_path):
    """amazon2014's ratings CSV is 2018's with user and item swapped: every line parses, so the
    mistake shows as no item matching the metadata, and no user kept."""
    with pytest.raises(UserError, match=r"kept 0 users.*no_metadata: 3,000"):
        prepare(_cfg(raw18, tmp_path / "ds", source="amazon2014"))


def test_swapped_ratings_and_meta_exit_2(raw18, tmp_path):
    with pytest.raises(UserError, match=rf"{raw18['meta'].name}: no line could be read"):
        prepare(PrepareConfig(ratings=[raw18["meta"]], meta=[raw18["ratings"]], out=tmp_path / "ds"))


def test_empty_ratings_file_exits_2(raw18, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match=r"empty\.csv: no line could be read .*empty_file"):
        prepare(PrepareConfig(ratings=[empty], meta=[raw18["meta"]], out=tmp_path / "ds"))


@pytest.mark.parametrize("content", [b"", b"not json at all\n" * 50, b'{"asin": ""}\n' * 5])
def test_empty_or_garbage_meta_exits_2(raw18, tmp_path, content):
    meta = tmp_path / "meta.json"
    meta.write_bytes(content)
    with pytest.raises(UserError, match=r"meta\.json: .*amazon2018 item table"):
        prepare(PrepareConfig(ratings=[raw18["ratings"]], meta=[meta], out=tmp_path / "ds"))


def test_zero_users_kept_exits_2_with_top_drop_reasons_and_keeps_old_output(raw18, tmp_path):
    out = tmp_path / "ds"
    prepare(_cfg(raw18, out))
    before = _snapshot(out)
    with pytest.raises(UserError, match=r"kept 0 users.*below_min_interactions: [\d,]+ rows"):
        prepare(_cfg(raw18, out, min_user_interactions=10_000))
    assert _snapshot(out) == before


def test_min_users_threshold(raw18, tmp_path):
    card = prepare(_cfg(raw18, tmp_path / "a"))
    with pytest.raises(UserError, match=rf"kept {card['n_users']:,} users, fewer than min_users="):
        prepare(_cfg(raw18, tmp_path / "b", min_users=card["n_users"] + 1))
    assert prepare(_cfg(raw18, tmp_path / "c", min_users=card["n_users"]))["n_users"] == card["n_users"]


# ------------------------------------------------------------------------------------ outputs


def test_out_holding_the_inputs_is_refused(raw18, tmp_path):
    folder = raw18["ratings"].parent
    before = _snapshot(folder)
    with pytest.raises(UserError, match="holds the input"):
        prepare(_cfg(raw18, folder))
    assert _snapshot(folder) == before


def test_out_inside_an_input_dir_is_refused(raw18, tmp_path):
    ds = tmp_path / "ds"
    prepare(_cfg(raw18, ds))
    with pytest.raises(UserError, match="lies inside the input"):
        prepare(_cfg(raw18, ds / "nested", exclude_users=[ds]))


def test_unrelated_folder_is_refused_and_kept(raw18, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="not an output of this tool"):
        prepare(_cfg(raw18, mine))
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_dot_out_is_refused_and_kept(raw18, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    for out in (Path("."), Path("..")):
        with pytest.raises(UserError, match="not an output of this tool"):
            prepare(_cfg(raw18, out))
    assert (work / "notes.txt").read_text() == "mine"


def test_other_stage_output_is_refused(raw18, tmp_path):
    other = tmp_path / "tok"
    other.mkdir()
    (other / MARKER).write_text(json.dumps({"stage": "text train"}))
    with pytest.raises(UserError, match="a `text train` output"):
        prepare(_cfg(raw18, other))


def test_existing_file_as_out_is_refused_and_kept(raw18, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    with pytest.raises(UserError, match="existing file"):
        prepare(_cfg(raw18, f))
    assert f.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_rerun_replaces_previous_output_only_when_complete(raw18, tmp_path):
    out = tmp_path / "ds"
    first = prepare(_cfg(raw18, out))
    assert json.loads((out / MARKER).read_text()) == {"stage": "data prepare"}
    second = prepare(_cfg(raw18, out, min_user_interactions=3))
    assert second["n_interactions"] >= first["n_interactions"]
    assert json.loads((out / "card.json").read_text())["params"]["min_user_interactions"] == 3
    before = _snapshot(out)
    with pytest.raises(UserError):
        prepare(PrepareConfig(ratings=[raw18["meta"]], meta=[raw18["meta"]], out=out))
    assert _snapshot(out) == before


def test_legacy_dataset_without_marker_is_recognised(raw18, tmp_path):
    out = tmp_path / "ds"
    prepare(_cfg(raw18, out))
    (out / MARKER).unlink()  # written before markers existed: card.json identifies it
    prepare(_cfg(raw18, out))
    assert (out / MARKER).is_file()


def _lock_holder(path) -> subprocess.Popen:
    """A live process holding `take_lock(path)`, as another `scalerec` writer would; kill it to
    leave the lock file behind the way a killed writer does."""
    code = (f"import sys, time; from scalerec.io import take_lock; h = take_lock({str(path)!r}); "
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_concurrent_writer_gets_a_lock_error(raw18, tmp_path):
    out = tmp_path / "ds"
    holder = _lock_holder(out)
    try:
        with pytest.raises(UserError, match=rf"being written by another process \(pid {holder.pid}\)"):
            prepare(_cfg(raw18, out))
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / ".ds.lock").exists()  # killed: its file stays, its flock is gone
    prepare(_cfg(raw18, out))  # so the next writer takes it over
    assert not (tmp_path / ".ds.lock").exists()


def test_live_writer_temporaries_are_not_cleaned(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".ds.tmp-{holder.pid}"
        live.mkdir()
        dead = tmp_path / ".ds.tmp-999999999"
        dead.mkdir()
        clean_stale_temporaries(tmp_path / "ds")
        assert live.exists() and not dead.exists()
    finally:
        holder.kill()
        holder.wait()


def test_output_dir_api(tmp_path):
    """The generic helpers other stages use: marker written on success, nothing on failure."""
    out = tmp_path / "run"
    with output_dir(out, "train") as tmp:
        (tmp / "w.bin").write_bytes(b"1")
    assert (out / "w.bin").read_bytes() == b"1"
    with pytest.raises(UserError, match="pass --overwrite"):
        check_output(out, "train")
    check_output(out, "train", overwrite=True)
    with pytest.raises(RuntimeError), output_dir(out, "train", overwrite=True) as tmp:
        (tmp / "w.bin").write_bytes(b"2")
        raise RuntimeError("killed")
    assert (out / "w.bin").read_bytes() == b"1"
    with write_lock(out) as lock:
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()


def test_cli_exit_2_one_line(raw18, tmp_path):
    args = ["data", "prepare", "--ratings", str(raw18["ratings"]), "--meta", str(raw18["meta"])]
    proc = subprocess.run(
        [sys.executable, "-m", "scalerec", *args, "--out", str(raw18["ratings"].parent)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "holds the input" in proc.stderr and "Traceback" not in proc.stderr


def test_items_and_interactions_unchanged_by_checks(raw18, tmp_path):
    """The new checks change nothing in a clean run's dataset (same files as before the checks)."""
    card = prepare(_cfg(raw18, tmp_path / "ds"))
    inter = pl.read_parquet(tmp_path / "ds" / "interactions.parquet")
    assert inter.columns == ["user_id", "item_id", "timestamp", "rating"]
    assert len(inter) == card["n_interactions"] and card["parse"]["counts"] == {}
