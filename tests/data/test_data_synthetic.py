"""Synthetic dumps: every format is written, seeded, parseable, and carries learnable structure."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from scalerec.data.ingest.synthetic import generate
from scalerec.data.ingest.synthetic_formats import FORMATS, synthesize


def test_generate_is_seeded_and_exact_size():
    a, b, c = generate(5_000, seed=3), generate(5_000, seed=3), generate(5_000, seed=4)
    assert len(a.item) == 5_000
    assert np.array_equal(a.item, b.item) and np.array_equal(a.timestamp, b.timestamp)
    assert not np.array_equal(a.item, c.item)
    assert len(set(a.item_key)) == len(a.item_key) and len(set(a.user_key)) == len(a.user_key)


def test_histories_are_chronological_and_topic_sticky():
    w = generate(20_000, seed=0)
    same_user = w.user[1:] == w.user[:-1]
    assert (np.diff(w.timestamp)[same_user] > 0).all()
    topic = w.item_topic[w.item]
    stay = (topic[1:] == topic[:-1])[same_user].mean()
    n_topics = w.item_topic.max() + 1
    assert stay > 0.4 > 5.0 / n_topics  # next item follows the current topic far above chance


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_written(tmp_path, fmt):
    paths = synthesize(fmt, 2_000, tmp_path, seed=1)
    for p in paths.values():
        assert p.is_file() and p.stat().st_size > 0


def test_amazon2018_raw_schema(tmp_path):
    paths = synthesize("amazon2018", 1_000, tmp_path, seed=2)
    first = paths["ratings"].read_text().splitlines()[0].split(",")
    assert len(first) == 4 and first[0].startswith("B0") and float(first[2]) in {1, 2, 3, 4, 5}
    with gzip.open(paths["meta"], "rt") as fh:
        rec = json.loads(fh.readline())
    assert set(rec) == {"asin", "title", "brand", "category"} and isinstance(rec["category"], list)


def test_same_seed_same_bytes(tmp_path):
    a = synthesize("amazon2018", 3_000, tmp_path / "a", seed=5, malformed_rate=0.02)
    b = synthesize("amazon2018", 3_000, tmp_path / "b", seed=5, malformed_rate=0.02)
    assert a["ratings"].read_bytes() == b["ratings"].read_bytes()
    assert gzip.decompress(a["meta"].read_bytes()) == gzip.decompress(b["meta"].read_bytes())
