"""items.parquet and every subset's item table are written in item-id chunks (`build/items.py`) so
that memory is one chunk, not the catalog (8.3 GiB at the full 2018 scale when built whole). The
chunk size may change the file's row groups and nothing else: same rows, order, columns and types
as one chunk holding every item (what the whole-frame writer produced)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from scalerec.data import DomainSource, PrepareConfig, prepare, synthesize
from scalerec.data.build import items as items_mod
from scalerec.data.ingest.meta import read_meta
from scalerec.data.ingest.parse import ParseLog

NEVER = 10**12
ONE_CHUNK = 10**9
TINY = 7  # a few hundred chunks over the ~2K kept items


@pytest.fixture(scope="module")
def raws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("raw")
    return {
        "shop": synthesize("amazon2018", 20_000, root / "shop", seed=11, malformed_rate=0.002),
        "films": synthesize("movielens-100k", 3_000, root / "films", seed=12),
    }


def _item_tables(d: Path) -> list[Path]:
    return sorted(p.relative_to(d) for p in d.rglob("items.parquet"))


def _card(path: Path) -> dict:
    card = json.loads(path.read_text())
    card.pop("wall_time_s", None)
    card["params"].pop("out", None)
    return card


def _prepare(monkeypatch, chunk: int, out: Path, **cfg) -> dict:
    monkeypatch.setattr(items_mod, "ITEMS_CHUNK_ROWS", chunk)
    return prepare(PrepareConfig(out=out, name="d", **cfg))


def assert_same_items(one: Path, many: Path) -> None:
    tables = _item_tables(one)
    assert tables == _item_tables(many) and len(tables) >= 2  # the dataset's and a subset's
    for rel in tables:
        a, b = pl.read_parquet(one / rel), pl.read_parquet(many / rel)
        assert a.schema == b.schema and a.equals(b), rel
        assert pq.read_schema(one / rel) == pq.read_schema(many / rel), rel
        assert np.array_equal(a["item_id"].to_numpy(), np.arange(1, len(a) + 1)), rel
    for rel in sorted(p.relative_to(one) for p in one.rglob("*.parquet")):
        assert pl.read_parquet(one / rel).equals(pl.read_parquet(many / rel)), rel
    for rel in sorted(p.relative_to(one) for p in one.rglob("card.json")):
        assert _card(one / rel) == _card(many / rel), rel


@pytest.mark.parametrize("shard_above_rows", [NEVER, 0], ids=["in_memory", "sharded"])
def test_chunked_items_equal_one_chunk(raws, tmp_path, monkeypatch, shard_above_rows):
    shop = raws["shop"]
    cfg = {
        "ratings": [shop["ratings"]],
        "meta": [shop["meta"]],
        "subsets": ["2K", "10K"],
        "shard_above_rows": shard_above_rows,
        "shards": 4,
    }
    card = _prepare(monkeypatch, ONE_CHUNK, tmp_path / "one", **cfg)
    _prepare(monkeypatch, TINY, tmp_path / "many", **cfg)
    assert_same_items(tmp_path / "one", tmp_path / "many")
    n_items = card["n_items"]
    assert n_items > 50 * TINY  # many chunks, and most hold items with and without usable titles
    groups = pq.ParquetFile(tmp_path / "many" / "items.parquet").metadata.num_row_groups
    assert groups == -(-n_items // TINY)
    assert pq.ParquetFile(tmp_path / "one" / "items.parquet").metadata.num_row_groups == 1
    sub = pq.ParquetFile(tmp_path / "many" / "subsets" / "2K" / "items.parquet").metadata
    assert sub.num_row_groups > 1 and sub.num_rows == card["subsets"][0]["n_items"]
    assert not list((tmp_path / "many").rglob("_items_text")) and not list(
        (tmp_path / "many").rglob("*.arrow")
    )


def test_chunked_items_pooled_and_without_metadata(raws, tmp_path, monkeypatch):
    """The `domain` column of a pooled dataset (also joined onto the interactions), an item table
    read from two metadata files (text held in memory), and one with no metadata at all."""
    shop, films = raws["shop"], raws["films"]
    cases = {
        "pooled": {
            "domains": [
                DomainSource("shop", "amazon2018", [shop["ratings"]], [shop["meta"]]),
                DomainSource("films", "movielens", [films["ratings"]], [films["movies"]]),
            ],
            "subsets": ["2K"],
            "shard_above_rows": 0,
            "shards": 2,
        },
        "two_meta_files": {
            "ratings": [shop["ratings"]],
            "meta": [shop["meta"], shop["meta"]],
            "subsets": ["2K"],
        },
        "no_meta": {
            "ratings": [shop["ratings"]],
            "require_metadata": False,
            "require_title": False,
            "subsets": ["2K"],
            "shard_above_rows": 0,
        },
    }
    for name, cfg in cases.items():
        _prepare(monkeypatch, ONE_CHUNK, tmp_path / name / "one", **cfg)
        _prepare(monkeypatch, TINY, tmp_path / name / "many", **cfg)
        assert_same_items(tmp_path / name / "one", tmp_path / name / "many")
    pooled = pl.read_parquet(tmp_path / "pooled" / "many" / "items.parquet")
    assert set(pooled["domain"]) == {"shop", "films"}


def test_text_chunks_are_the_one_range_text_cut_by_item_id(raws, tmp_path):
    """`MetaTable.text_chunks`: bucketed by item-id range, each range sorted, nothing lost or added."""
    meta = read_meta("amazon2018", [raws["shop"]["meta"]], ParseLog("lenient"), tmp_path / "spill", 4096)
    assert len(meta.parts) > 5  # several spilled parts, so ranges gather rows from many parts
    flags = meta.flags()
    rng = np.random.default_rng(0)
    rows = flags["_row"].to_numpy()[rng.random(len(flags)) < 0.7]
    order = pl.DataFrame(
        {"_row": rng.permutation(rows), "item_id": np.arange(1, len(rows) + 1, dtype=np.int32)}
    )
    bounds = [1, 2, 50, 51, 400, len(rows) + 1]
    (whole,) = meta.text_chunks(order, [1, len(rows) + 1], tmp_path / "unused")
    cut = list(meta.text_chunks(order, bounds, tmp_path / "buckets"))
    assert len(whole) == len(rows) and whole["item_id"].is_sorted()
    assert [len(c) for c in cut] == list(np.diff(bounds))
    assert pl.concat(cut).equals(whole)
    assert not (tmp_path / "buckets").exists() and not (tmp_path / "unused").exists()
