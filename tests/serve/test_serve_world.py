"""The serving benchmark's polars-free world (benchmarks/serve_world.py): a GPU host without polars
rebuilds the served catalog, its token table and the request histories from the seed, and must get
exactly what the polars path (`generate` + the writer serve_model.py used before) produced."""

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

from scalerec.data.ingest.synthetic import generate, plan
from scalerec.text.item_tokens import build_token_table, load_item_tokens

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import serve_world  # noqa: E402  (a benchmark module, beside serve.py)

WORLD = {"interactions": 6000, "seed": 3, "n_items": 2000}


def _reference(out: Path, tokens: Path | None) -> Path:
    """The polars path as serve_model.py wrote it before: `generate`, items.parquet, histories."""
    world = generate(WORLD["interactions"], seed=WORLD["seed"], n_items=WORLD["n_items"])
    catalog = out / "catalog"
    catalog.mkdir(parents=True)
    n = len(world.item_key)
    pq.write_table(pa.table({
        "item_id": pa.array(np.arange(1, n + 1), pa.int32()),
        "item_key": pa.array(world.item_key.astype(str).tolist()),
        "title": pa.array(world.title.tolist()),
        "brand": pa.array(world.brand.tolist()),
        "categories": pa.array(world.categories.tolist(), pa.list_(pa.string())),
    }), catalog / "items.parquet")
    if tokens is not None:
        build_token_table(catalog, out / "catalog_tok", tokenizer_path=tokens / "tokenizer.json",
                          max_lens=json.loads((tokens / "token_table.json").read_text())["fields"])
    users = np.split(world.item, np.flatnonzero(np.diff(world.user)) + 1)
    picked = np.random.default_rng(WORLD["seed"]).choice(len(users), size=min(20_000, len(users)),
                                                          replace=False)
    keys = world.item_key.astype(str)
    (out / "histories.json").write_text(json.dumps([keys[users[u]].tolist() for u in picked]))
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The reference world and a tokenizer trained on its catalog (vocabulary kept small)."""
    base = tmp_path_factory.mktemp("ref")
    _reference(base / "untokenized", None)
    build_token_table(base / "untokenized" / "catalog", base / "tok", vocab_size=400)
    return _reference(base / "world", base / "tok"), base / "tok"


def test_numpy_keys_are_the_polars_keys_and_change_no_other_draw() -> None:
    a = plan(WORLD["interactions"], seed=WORLD["seed"], n_items=WORLD["n_items"])
    b = plan(WORLD["interactions"], seed=WORLD["seed"], n_items=WORLD["n_items"], numpy_keys=True)
    assert isinstance(b.item_key, np.ndarray)
    assert b.item_key.tolist() == a.item_key.to_list()
    assert np.array_equal(a.items, b.items) and np.array_equal(a.offsets, b.offsets)
    assert a.user_keys == b.user_keys and a.gap_states == b.gap_states and a.rating_states == b.rating_states


def test_render_titles_matches_the_polars_renderer() -> None:
    cat = plan(WORLD["interactions"], seed=WORLD["seed"], n_items=WORLD["n_items"]).catalog
    n = len(cat.item_topic)
    assert serve_world.render_titles(cat, 0, n).tolist() == cat.titles(0, n).tolist()
    assert serve_world.render_titles(cat, 100, 250).tolist() == cat.titles(100, 250).tolist()


def test_device_catalog_without_polars_equals_the_polars_path(reference: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    """serve_world.py run where `import polars` fails writes the same items, tokens and histories."""
    ref, tok = reference
    blocked = ("import runpy, sys; sys.modules['polars'] = None; sys.argv = sys.argv[1:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "benchmarks")])}
    spec = tmp_path / "world.json"  # as `serve_model.py --prepare-device` writes it
    spec.write_text(json.dumps({"items": WORLD["n_items"], "interactions": WORLD["interactions"],
                                "seed": WORLD["seed"], "train_subset": "2K"}))
    done = subprocess.run(
        [sys.executable, "-c", blocked, str(ROOT / "benchmarks" / "serve_world.py"), "--tokens", str(tok),
         "--out", str(tmp_path), "--world", str(spec)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert pq.read_table(tmp_path / "catalog" / "items.parquet").equals(
        pq.read_table(ref / "catalog" / "items.parquet"))
    got, want = load_item_tokens(tmp_path / "catalog_tok"), load_item_tokens(ref / "catalog_tok")
    assert got.fields.keys() == want.fields.keys()
    for f in want.fields:
        assert np.array_equal(got.fields[f], want.fields[f])
        assert np.array_equal(got.lengths[f], want.lengths[f])
    histories = (tmp_path / "histories.json", ref / "histories.json")
    assert json.loads(histories[0].read_text()) == json.loads(histories[1].read_text())


def test_histories_are_whole_user_histories_in_order() -> None:
    world = serve_world.serve_world(900, 5, 300)
    hist = serve_world.pick_histories(world, 5, n=7)
    users = [world.keys[world.items[a:b]].tolist() for a, b in zip(world.offsets[:-1], world.offsets[1:],
                                                                   strict=True)]
    assert len(hist) == 7 and len({tuple(h) for h in hist}) > 1
    assert all(h in users for h in hist)
