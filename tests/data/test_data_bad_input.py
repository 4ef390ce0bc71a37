"""Bad input for every reader: strict names file and line; lenient counts and keeps the rest.

Fixtures are small synthetic files in each published schema (`scalerec.data.ingest.synthetic`); each
test injects one kind of damage at a known line and checks both modes.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest

from scalerec.data.build.card import read_card
from scalerec.data.ingest.parse import ParseLog
from scalerec.data.ingest.sources import read_interactions, read_items
from scalerec.data.ingest.synthetic_formats import synthesize
from scalerec.errors import UserError

# (synth format, prepare source, role, reader kind)
CASES = [
    ("amazon2018", "amazon2018", "ratings", "inter"),
    ("amazon2018", "amazon2018", "reviews", "inter"),
    ("amazon2018", "amazon2018", "meta", "items"),
    ("amazon2014", "amazon2014", "ratings", "inter"),
    ("amazon2014", "amazon2014", "meta", "items"),
    ("amazon2023", "amazon2023", "ratings", "inter"),
    ("amazon2023", "amazon2023", "meta", "items"),
    ("movielens-1m", "movielens", "ratings", "inter"),
    ("movielens-20m", "movielens", "ratings", "inter"),
]
BAD_LINE = 7


def _read(source, kind, path, mode):
    log = ParseLog(mode)
    if kind == "inter":
        blocks = list(read_interactions(source, path, log))
        return (pl.concat(blocks) if blocks else pl.DataFrame()), log
    return read_items(source, path, log), log


def _lines(path):
    raw = path.read_bytes()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).split(b"\n")


def _write(path, lines):
    data = b"\n".join(lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def _damage(kind_of_file, how):
    json_like = kind_of_file in ("json",)
    return {
        "invalid_json": b'{"asin": "B0X", "title": ' if json_like else None,
        "wrong_columns": None if json_like else b"only,two",
        "bad_timestamp": None,
        "non_utf8": b"\xff\xfe\xfa broken bytes",
    }[how]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    return {fmt: synthesize(fmt, 600, root / fmt, seed=2) for fmt in {c[0] for c in CASES}}


def _is_json(path):
    return ".json" in path.name


@pytest.mark.parametrize("fmt,source,role,kind", CASES)
@pytest.mark.parametrize("how", ["invalid_json", "wrong_columns", "non_utf8", "bad_timestamp"])
def test_one_bad_line(clean, tmp_path, fmt, source, role, kind, how):
    src = clean[fmt][role]
    lines = _lines(src)
    header = 1 if fmt == "movielens-20m" else 0
    if how == "bad_timestamp":
        if kind != "inter":
            pytest.skip("item tables carry no timestamps")
        if _is_json(src):
            bad = (
                lines[header + BAD_LINE - 1]
                .replace(b'"timestamp":', b'"timestamp":"soon","x":')
                .replace(b'"unixReviewTime":', b'"unixReviewTime":"soon","x":')
            )
        else:
            sep = b"::" if src.suffix == ".dat" else b","
            bad = sep.join(lines[header + BAD_LINE - 1].split(sep)[:3] + [b"yesterday"])
    else:
        bad = _damage("json" if _is_json(src) else "csv", how)
        if bad is None:
            pytest.skip(f"{how} does not apply to this file type")
    lines[header + BAD_LINE - 1] = bad
    path = tmp_path / src.name
    _write(path, lines)
    good, _ = _read(source, kind, src, "lenient")
    with pytest.raises(UserError, match=rf"{path.name}, line {header + BAD_LINE}\b"):
        _read(source, kind, path, "strict")
    got, log = _read(source, kind, path, "lenient")
    assert log.total == 1 and len(log.examples) == 1 and log.examples[0]["line"] == header + BAD_LINE
    assert len(got) == len(good) - 1


@pytest.mark.parametrize("fmt,source,role,kind", CASES)
def test_truncated_gzip_keeps_complete_lines(clean, tmp_path, fmt, source, role, kind):
    src = clean[fmt][role]
    data = b"\n".join(_lines(src))
    packed = gzip.compress(data)
    path = tmp_path / (src.name if src.suffix == ".gz" else src.name + ".gz")
    path.write_bytes(packed[: int(len(packed) * 0.6)])
    with pytest.raises(UserError, match=rf"{path.name}, line \d+: truncated gzip"):
        _read(source, kind, path, "strict")
    got, log = _read(source, kind, path, "lenient")
    good, _ = _read(source, kind, src, "lenient")
    assert log.counts == {"truncated_gzip": 1}
    assert 0 < len(got) < len(good)
    if kind == "inter":  # what survived is exactly a prefix of the clean parse
        assert got.equals(good.head(len(got)))


@pytest.mark.parametrize("fmt,source,role,kind", CASES)
def test_empty_file(tmp_path, fmt, source, role, kind):
    path = tmp_path / ("empty.json" if role != "ratings" or "2023" in fmt else "empty.csv")
    path.write_bytes(b"")
    with pytest.raises(UserError, match="empty.*line 1: empty file"):
        _read(source, kind, path, "strict")
    got, log = _read(source, kind, path, "lenient")
    assert len(got) == 0 and log.counts == {"empty_file": 1}


def test_prepare_strict_and_lenient(clean, tmp_path):
    from scalerec.data.build.prepare import PrepareConfig, prepare

    raw = synthesize("amazon2018", 5_000, tmp_path / "raw", seed=4, malformed_rate=0.02)
    cfg = dict(source="amazon2018", ratings=[raw["ratings"]], meta=[raw["meta"]])
    with pytest.raises(UserError, match=r"ratings\.csv, line \d+"):
        prepare(PrepareConfig(out=tmp_path / "s", mode="strict", **cfg))
    assert not (tmp_path / "s").exists()
    card = prepare(PrepareConfig(out=tmp_path / "l", **cfg))
    n_lines = sum(card["source"]["lines_read"].values())
    assert card["dropped"]["malformed"] == 5_000 - card["source"]["rows_parsed"] > 50
    assert sum(card["parse"]["counts"].values()) > card["dropped"]["malformed"]  # + broken metadata lines
    assert 0 < len(card["parse"]["examples"]) <= 20 and n_lines > 5_000


def test_kill_during_prepare_leaves_nothing_usable(tmp_path):
    raw = synthesize("amazon2018", 150_000, tmp_path / "raw", seed=5)
    out = tmp_path / "ds"
    code = (
        "from scalerec.data.build.prepare import PrepareConfig, prepare; "
        f"prepare(PrepareConfig(ratings=[{str(raw['ratings'])!r}], meta=[{str(raw['meta'])!r}], "
        f"out={str(out)!r}, subsets=['10K', '100K']))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".ds.tmp-*")):
        time.sleep(0.005)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".ds.tmp-*")), "prepare finished before it could be killed"
    assert not out.exists()
    with pytest.raises(UserError):
        read_card(out)
    from scalerec.data.build.prepare import PrepareConfig, prepare

    prepare(PrepareConfig(ratings=[raw["ratings"]], meta=[raw["meta"]], out=out))
    assert read_card(out)["n_interactions"] > 0
    assert not list(tmp_path.glob(".ds.tmp-*"))


BENCH_CASES = {
    # RecBole .inter in the published typed-header schema (ml-100k style)
    "recbole": (
        "x.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float",
        lambda u, k: f"{u}\t{10 + k}\t4\t{881250949 + k}",
    ),
    # S3Rec sequence lines (user item item ...)
    "s3rec": ("seq.txt", None, lambda u, k: f"{u} " + " ".join(str(10 + u + j) for j in range(5))),
}


@pytest.mark.parametrize("source", sorted(BENCH_CASES))
@pytest.mark.parametrize("how", ["wrong_columns", "non_utf8", "bad_timestamp", "empty_line"])
def test_bench_formats_bad_line(tmp_path, source, how):
    name, header, row = BENCH_CASES[source]
    lines = ([header] if header else []) + [row(u, k) for u in range(1, 5) for k in range(3)]
    if source == "s3rec":
        lines = [row(u, 0) for u in range(1, 13)]
    at = len(lines) - 4  # 0-based index of the damaged line
    bad = {
        "wrong_columns": "7" if source == "s3rec" else "1\t2",
        "non_utf8": None,
        "bad_timestamp": None if source == "s3rec" else "9\t9\t4\tlater",
        "empty_line": "   ",
    }[how]
    if how == "bad_timestamp" and bad is None:
        pytest.skip("S3Rec lines carry no timestamps")
    data = [ln.encode() for ln in lines]
    data[at] = b"\xff\xfe 1 2" if how == "non_utf8" else bad.encode()
    path = tmp_path / name
    path.write_bytes(b"\n".join(data) + b"\n")
    with pytest.raises(UserError, match=rf"{name}, line {at + 1}\b"):
        _read(source, "inter", path, "strict")
    got, log = _read(source, "inter", path, "lenient")
    assert log.total == 1 and log.examples[0]["line"] == at + 1
    clean_path = tmp_path / ("clean_" + name)
    clean_path.write_text("\n".join(ln for i, ln in enumerate(lines) if i != at) + "\n")
    good, _ = _read(source, "inter", clean_path, "lenient")
    assert got.equals(good)


def test_fast_and_careful_csv_paths_agree(clean):
    """The one-pass typed parse of clean blocks equals the line-by-line parse (parity)."""
    from scalerec.data.ingest.frames import fast_block, finish_block
    from scalerec.data.ingest.parse import lines_frame, split_delimited

    src = clean["amazon2018"]["ratings"]
    block = src.read_bytes().rstrip(b"\n")
    names = ["item_key", "user_key", "rating", "timestamp"]
    fast = fast_block(block, ",", names)
    log = ParseLog("strict")
    slow = finish_block(split_delimited(lines_frame(block, 1), ",", names, src, log), src, log)
    assert fast is not None and fast.equals(slow)
    assert fast_block(block + b"\nA,B,5.0,notatime", ",", names) is None
