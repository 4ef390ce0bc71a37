"""The on-disk sharded path of `prepare` writes exactly what the in-memory path writes."""

from __future__ import annotations

import json

import polars as pl
import pytest

from scalerec.data.build.prepare import PrepareConfig, prepare
from scalerec.data.ingest.synthetic_formats import synthesize

NEVER = 10**12


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return synthesize("amazon2018", 30_000, tmp_path_factory.mktemp("raw"), seed=3, malformed_rate=0.001)


def _dataset_files(d):
    return sorted(p.relative_to(d) for p in d.rglob("*") if p.is_file())


def _card(path):
    card = json.loads(path.read_text())
    card.pop("wall_time_s", None)
    card["params"] = {
        k: v for k, v in card["params"].items() if k not in ("out", "shard_above_rows", "shards")
    }
    return card


def assert_same_dataset(a, b):
    files = _dataset_files(a)
    assert files == _dataset_files(b)
    for rel in files:
        if rel.suffix == ".parquet":
            fa, fb = pl.read_parquet(a / rel), pl.read_parquet(b / rel)
            assert fa.schema == fb.schema, rel
            assert fa.equals(fb), rel
        elif rel.name == "card.json":
            assert _card(a / rel) == _card(b / rel), rel
    assert (a / "card.json").read_text().count("\n") == (b / "card.json").read_text().count("\n")


@pytest.mark.parametrize(
    "extra",
    [
        {"subsets": ["2K", "10K", "20K", "1M"]},
        {"k_core": 5, "subsets": ["5K"]},
        {"min_user_interactions": 1, "require_title": False, "shards": 1},
    ],
    ids=["subsets", "k_core", "one_shard"],
)
def test_sharded_path_matches_in_memory(raw, tmp_path, extra):
    base = {"ratings": [raw["ratings"]], "meta": [raw["meta"]], "name": "syn", **extra}
    mem = tmp_path / "mem"
    card_mem = prepare(PrepareConfig(out=mem, shard_above_rows=NEVER, **base))
    shard = tmp_path / "shard"
    card_sh = prepare(PrepareConfig(out=shard, shard_above_rows=0, **{"shards": 8, **base}))
    assert card_mem["dataset_hash"] == card_sh["dataset_hash"]
    assert card_mem["steps"] == card_sh["steps"] and card_mem["dropped"] == card_sh["dropped"]
    assert list(card_mem["dropped"]) == list(card_sh["dropped"])
    assert card_mem["subsets"] == card_sh["subsets"]
    assert_same_dataset(mem, shard)
    assert not (shard / "_shards").exists()
    assert not list(tmp_path.glob(".shard.tmp-*"))


def test_switch_in_the_middle_of_parsing(raw, tmp_path):
    """The threshold is crossed after some blocks: rows already in memory move to the shards."""
    base = {
        "ratings": [raw["ratings"], raw["ratings"]],
        "meta": [raw["meta"]],
        "name": "syn",
        "subsets": ["10K"],
    }
    mem = tmp_path / "mem"
    prepare(PrepareConfig(out=mem, shard_above_rows=NEVER, **base))
    shard = tmp_path / "shard"
    card = prepare(PrepareConfig(out=shard, shard_above_rows=40_000, shards=4, **base))
    assert card["source"]["rows_parsed"] > 40_000
    assert_same_dataset(mem, shard)


def _both_paths(tmp_path, **cfg):
    mem, shard = tmp_path / "mem", tmp_path / "shard"
    prepare(PrepareConfig(out=mem, name="d", shard_above_rows=NEVER, **cfg))
    prepare(PrepareConfig(out=shard, name="d", shard_above_rows=0, shards=16, **cfg))
    assert_same_dataset(mem, shard)
    return mem


def test_sharded_exclusions_match(raw, tmp_path):
    rows = [line.split(",") for line in raw["ratings"].read_text().splitlines()[:3_000]]
    keys = sorted({f[1] for f in rows if len(f) == 4})
    key_file = tmp_path / "keys.txt"
    key_file.write_text("\n".join(keys) + "\n")
    mem = _both_paths(
        tmp_path, ratings=[raw["ratings"]], meta=[raw["meta"]], exclude_users=[key_file], k_core=3
    )
    assert json.loads((mem / "card.json").read_text())["dropped"]["excluded_users"] > 0


def test_sharded_s3rec_user_map_and_overlap_removal(shared_data, tmp_path):
    """S3Rec ids mapped through the P5 datamaps before they are hashed into shards."""
    d = shared_data / "amazon_sports_2014_5core"
    mem = _both_paths(
        tmp_path,
        source="s3rec",
        ratings=[d / "Sports_and_Outdoors.txt"],
        meta=[d / "datamaps.json.gz"],
        require_title=False,
        exclude_users=[shared_data / "amazon_beauty_2014_5core" / "datamaps.json.gz"],
        subsets=["100K"],
    )
    assert json.loads((mem / "card.json").read_text())["n_users"] == 35_598 - 1_625
