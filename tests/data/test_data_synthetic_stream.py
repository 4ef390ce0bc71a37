"""The streamed synthetic generator writes the same bytes as the former all-in-memory one.

`synthetic_reference.py` is the generator and Amazon-2018 writer frozen as they were before
streaming. Chunk sizes are made tiny here so every case spans many chunks of users, of generation
pieces and of metadata items: a draw taken in the wrong order or size would change the bytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import synthetic_reference as ref

from scalerec.data.ingest import synthetic, synthetic_amazon2018
from scalerec.data.ingest.synthetic_formats import WRITERS, synthesize
from scalerec.data.ingest.synthetic_lines import LineSink

CASES = [  # n_interactions, seed, malformed_rate, n_items, gzip_meta
    (1_000, 0, 0.0, None, True),
    (30_000, 3, 0.02, None, False),
    (40_000, 7, 0.05, 900, True),
]


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "CHUNK_USERS", 29)
    monkeypatch.setattr(synthetic, "_SUB", 6)
    monkeypatch.setattr(synthetic_amazon2018, "META_CHUNK", 64)


def _content(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


@pytest.mark.parametrize(("n", "seed", "rate", "items", "gz"), CASES)
def test_streamed_dump_is_byte_identical_to_the_in_memory_reference(
    tmp_path: Path, tiny_chunks: None, n: int, seed: int, rate: float, items: int | None, gz: bool
) -> None:
    old = ref.synthesize_amazon2018(n, tmp_path / "old", seed=seed, rate=rate, n_items=items, gz=gz)
    new = synthesize(
        "amazon2018", n, tmp_path / "new", seed=seed, malformed_rate=rate, n_items=items, gzip_meta=gz
    )
    assert len(synthetic.plan(n, seed=seed, n_items=items).bounds) > 3  # really chunked
    assert list(new) == list(old)
    for role in old:
        assert _content(new[role]) == _content(old[role]), role


@pytest.mark.parametrize(("n", "seed", "items"), [(20_000, 1, None), (12_345, 9, 400)])
def test_world_equals_the_reference_world(tiny_chunks: None, n: int, seed: int, items: int | None) -> None:
    old, new = ref.generate(n, seed=seed, n_items=items), synthetic.generate(n, seed=seed, n_items=items)
    for name in (
        "item_key",
        "title",
        "brand",
        "categories",
        "item_topic",
        "user_key",
        "user",
        "item",
        "timestamp",
        "rating",
    ):
        a, b = getattr(old, name), getattr(new, name)
        assert a.shape == b.shape and (a == b).all(), name


def test_world_writer_matches_the_streamed_plan(tmp_path: Path, tiny_chunks: None) -> None:
    """WRITERS['amazon2018'] (a world in memory, one chunk) and the streamed plan agree."""
    streamed = synthesize("amazon2018", 8_000, tmp_path / "s", seed=4, malformed_rate=0.03)
    (tmp_path / "w").mkdir()
    whole = WRITERS["amazon2018"](
        synthetic.generate(8_000, seed=4), tmp_path / "w", np.random.default_rng(4 + 7919), 0.03, True
    )
    for role in streamed:
        assert _content(whole[role]) == _content(streamed[role]), role


def test_gzip_files_are_the_same_bytes_for_the_same_seed(tmp_path: Path) -> None:
    a = synthesize("amazon2018", 2_000, tmp_path / "a", seed=5)
    b = synthesize("amazon2018", 2_000, tmp_path / "b", seed=5)
    assert a["meta"].read_bytes() == b["meta"].read_bytes()
    assert a["reviews"].read_bytes() == b["reviews"].read_bytes()


def test_plan_keeps_one_int32_per_rating_and_renders_bounded_chunks(tiny_chunks: None) -> None:
    p = synthetic.plan(5_000, seed=2)
    assert p.items.dtype == np.int32 and p.items.shape == (5_000,)
    sizes = [len(c.user_key) for c in p.chunks()]
    assert max(sizes) == 29 and sum(sizes) == len(p.offsets) - 1


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    import polars as pl

    target = tmp_path / "meta.json.gz"
    with pytest.raises(RuntimeError), LineSink(target) as sink:
        sink.write(pl.Series(["a", "b"]))
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
