"""Metadata read in chunks (`scalerec.data.ingest.meta`) equals the whole table cleaned at once."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

import scalerec.data.ingest.meta as meta_mod
from scalerec.data.build.prepare import PrepareConfig, prepare
from scalerec.data.ingest.meta import read_meta
from scalerec.data.ingest.parse import ParseLog
from scalerec.data.ingest.sources import read_items
from scalerec.data.ingest.synthetic_formats import synthesize
from scalerec.data.ingest.titles import clean_items
from scalerec.errors import UserError


def _card(path):
    card = json.loads(path.read_text())
    card.pop("wall_time_s")
    card["params"].pop("out")
    return card


def _assert_same_dataset(a, b):
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix == ".parquet":
            assert pl.read_parquet(a / rel).equals(pl.read_parquet(b / rel)), rel
        elif rel.name == "card.json":
            assert _card(a / rel) == _card(b / rel), rel


def _whole(source, path, mode="lenient"):
    log = ParseLog(mode)
    out, counts = clean_items(read_items(source, path, log))
    return out, counts, log


def _chunked(source, path, spill, chunk_bytes, mode="lenient"):
    log = ParseLog(mode)
    table = read_meta(source, [path], log, spill, chunk_bytes=chunk_bytes)
    return table, log


@pytest.mark.parametrize(
    "folder,name",
    [
        ("amazon2018_magazine_subscriptions", "meta_Magazine_Subscriptions.json.gz"),
        ("amazon2018_gift_cards", "meta_Gift_Cards.json.gz"),
    ],
)
def test_real_meta_chunked_equals_whole(shared_data, tmp_path, folder, name):
    path = shared_data / folder / name
    out, counts, log = _whole("amazon2018", path)
    table, clog = _chunked("amazon2018", path, tmp_path / "spill", chunk_bytes=64 << 10)
    assert len(table.parts) >= 4  # several chunks, duplicates of an item across them
    assert table.counts == counts
    assert table.frame().equals(out)  # same rows, same order, same cleaned text
    assert (clog.counts, clog.examples, clog.lines) == (log.counts, log.examples, log.lines)
    if "Magazine" in name:
        assert counts["duplicate_lines"] > 0 and counts["raw_titles_junk"] > 0


def _damaged_meta(tmp_path, fmt, bad_lines):
    src = synthesize(fmt, 3_000, tmp_path / "raw", seed=5, n_items=400)["meta"]
    lines = gzip.decompress(src.read_bytes()).split(b"\n")
    for no in bad_lines:
        lines[no - 1] = b"\xff\xfe not a record"
    path = tmp_path / src.name
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    return path, len(lines)


@pytest.mark.parametrize("fmt", ["amazon2018", "amazon2014", "amazon2023"])
def test_bad_lines_keep_their_numbers_across_chunks(tmp_path, fmt):
    late = 333
    path, n_lines = _damaged_meta(tmp_path, fmt, [7, late])
    assert n_lines > late + 10
    small = 4 << 10  # a few dozen lines per chunk: both bad lines fall in different chunks
    with pytest.raises(UserError, match=rf"{path.name}, line 7\b"):
        _chunked(fmt, path, tmp_path / "s0", small, mode="strict")
    table, log = _chunked(fmt, path, tmp_path / "s1", small)
    assert len(table.parts) >= 8  # ~30 lines a chunk: line 7 in the first, the late one far in
    assert [e["line"] for e in log.examples] == [7, late]
    assert log.counts == {"non_utf8": 2}
    out, counts, whole_log = _whole(fmt, path)
    assert (log.counts, log.examples) == (whole_log.counts, whole_log.examples)
    assert table.counts == counts and table.frame().equals(out)

    # strict mode names the late line when it is the only bad one
    only_late, _ = _damaged_meta(tmp_path / "late", fmt, [late])
    with pytest.raises(UserError, match=rf"{only_late.name}, line {late}\b"):
        _chunked(fmt, only_late, tmp_path / "s2", small, mode="strict")


@pytest.mark.parametrize("shard_above_rows", [0, 10**12])
def test_prepare_same_dataset_with_small_meta_chunks(shared_data, tmp_path, monkeypatch, shard_above_rows):
    d = shared_data / "amazon2018_magazine_subscriptions"
    kw = dict(
        source="amazon2018",
        ratings=[d / "Magazine_Subscriptions.csv.gz"],
        meta=[d / "meta_Magazine_Subscriptions.json.gz"],
        min_user_interactions=2,
        subsets=["1K", "10K"],
        shard_above_rows=shard_above_rows,
        name="magazine",
    )
    prepare(PrepareConfig(out=tmp_path / "big", **kw))
    monkeypatch.setattr(meta_mod, "META_CHUNK_BYTES", 32 << 10)
    prepare(PrepareConfig(out=tmp_path / "small", **kw))
    _assert_same_dataset(tmp_path / "big", tmp_path / "small")
    assert not list((tmp_path / "small").rglob("meta-*.parquet"))  # the spill is gone
