"""Normalization, tokenizer determinism and special ids, and the item token table round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from scalerec.errors import UserError
from scalerec.text import (
    build_token_table,
    encode_items,
    load_item_tokens,
    load_tokenizer,
    normalize_text,
    train_tokenizer,
)
from scalerec.text.tokenizer import UNK_ID

ROWS = [
    ("Apple &amp; Pear <b>Juice</b>", "FruitCo", ["Food", "Drinks"]),
    ("Organic Apple Juice 1L", "FruitCo", ["Food"]),
    ("Pear cider, dry", None, []),
    ("ＦＵＬＬ width Apple", "Big Brand", ["Drinks", "Cider"]),
    ("Sparkling apple water with a very long title that goes on and on", "", ["Drinks"]),
] * 4


def _write_items(directory: Path, rows=ROWS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "item_id": pa.array(range(1, len(rows) + 1), pa.int32()),
            "item_key": [f"k{i}" for i in range(len(rows))],
            "title": [r[0] for r in rows],
            "brand": [r[1] for r in rows],
            "categories": pa.array([r[2] for r in rows], pa.list_(pa.string())),
        }
    )
    pq.write_table(table, directory / "items.parquet")
    return directory


def test_normalize_text() -> None:
    assert normalize_text("Apple &amp; Pear <b>Juice</b>") == "apple pear juice"
    assert normalize_text("&lt;i&gt;Bold&lt;/i&gt; ＡＢＣ") == "bold abc"
    assert normalize_text("Don't  STOP—now!") == "don t stop now"
    assert normalize_text(None) == "" and normalize_text(float("nan")) == ""
    assert normalize_text("Café ﬁne") == "café fine"


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_normalize_is_idempotent_and_canonical(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert once == once.strip() and "  " not in once and "<" not in once


def test_tokenizer_is_deterministic_with_fixed_special_ids() -> None:
    texts = [r[0] for r in ROWS] + [r[1] or "" for r in ROWS]
    a, b = train_tokenizer(texts, 80), train_tokenizer(texts, 80)
    assert a.to_str() == b.to_str()
    assert a.token_to_id("[PAD]") == 0 and a.token_to_id("[UNK]") == 1


def test_token_table_round_trip(tmp_path: Path) -> None:
    data = _write_items(tmp_path / "ds")
    manifest = build_token_table(data, tmp_path / "tok", vocab_size=80, max_lens={"title": 6, "brand": 3})
    tokens = load_item_tokens(tmp_path / "tok")
    assert manifest["n_items"] == len(ROWS) and tokens.vocab_size == manifest["vocab_size"] <= 80
    assert set(tokens.fields) == {"title", "brand"}
    assert tokens.fields["title"].shape == (len(ROWS) + 1, 6) and tokens.fields["title"].dtype == np.int32
    assert (tokens.fields["title"][0] == 0).all() and tokens.lengths["title"][0] == 0
    for f, arr in tokens.fields.items():
        lens = tokens.lengths[f]
        assert ((arr != 0).sum(1) == lens).all()
        assert all((row[n:] == 0).all() for row, n in zip(arr, lens, strict=True))  # right padded
    assert tokens.lengths["brand"][3] == 0 and tokens.lengths["brand"][5] == 0  # None and "" brands
    assert tokens.lengths["title"][5] == 6  # truncated long title
    tok = load_tokenizer(tmp_path / "tok" / "tokenizer.json")
    again = encode_items(
        tok, [r[0] for r in ROWS], [r[1] for r in ROWS], [r[2] for r in ROWS], {"title": 6, "brand": 3}
    )
    np.testing.assert_array_equal(again.fields["title"], tokens.fields["title"][1:])
    assert not list(tmp_path.glob(".tok.tmp-*"))
    tables = tokens.torch_tables()
    assert tables["title"].shape == (len(ROWS) + 1, 6)


def test_pretrained_tokenizer_maps_unknown_pieces_to_unk(tmp_path: Path) -> None:
    src = _write_items(tmp_path / "src")
    build_token_table(src, tmp_path / "tok_src", vocab_size=80)
    new_rows = [("Жёлтый чай", "Ωmega", ["Tea"]), ("apple juice", "FruitCo", ["Food"])]
    dst = _write_items(tmp_path / "dst", new_rows)
    manifest = build_token_table(
        dst, tmp_path / "tok_dst", tokenizer_path=tmp_path / "tok_src" / "tokenizer.json"
    )
    src_meta = load_item_tokens(tmp_path / "tok_src").meta
    assert manifest["tokenizer_hash"] == src_meta["tokenizer_hash"]
    assert manifest["vocab_size"] == src_meta["vocab_size"]
    tokens = load_item_tokens(tmp_path / "tok_dst")
    title = tokens.fields["title"][1]
    assert tokens.lengths["title"][1] > 0 and (title[: tokens.lengths["title"][1]] == UNK_ID).all()
    assert (tokens.fields["title"][2][: tokens.lengths["title"][2]] != UNK_ID).all()
    assert manifest["field_stats"]["title"]["unk_rate"] > 0.5


def test_bad_inputs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="items file not found"):
        build_token_table(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "ds").mkdir()
    pq.write_table(pa.table({"item_id": [1], "title": ["x"]}), tmp_path / "ds" / "items.parquet")
    with pytest.raises(UserError, match="missing column"):
        build_token_table(tmp_path / "ds", tmp_path / "out")
    with pytest.raises(UserError, match="token table not found"):
        load_item_tokens(tmp_path / "nothing")
    with pytest.raises(UserError, match="tokenizer file not found"):
        load_tokenizer(tmp_path / "nothing.json")


def test_cli_text_train(tmp_path: Path) -> None:
    from scalerec.cli import app

    data = _write_items(tmp_path / "ds")
    out = tmp_path / "tok"
    result = CliRunner().invoke(
        app,
        [
            "text",
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--vocab-size",
            "70",
            "--set",
            "field_max_len={title=5}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    assert set(load_item_tokens(out).fields) == {"title"}


def test_empty_brand_placeholder_and_cli_pretrained_tokenizer(tmp_path: Path, capsys) -> None:
    from scalerec.cli import app, main

    data = _write_items(tmp_path / "ds")
    build_token_table(data, tmp_path / "tok", vocab_size=80, empty_brand="unknown")
    tokens = load_item_tokens(tmp_path / "tok")
    assert tokens.lengths["brand"][3] > 0 and tokens.lengths["brand"][5] > 0  # None and "" brands
    np.testing.assert_array_equal(tokens.fields["brand"][3], tokens.fields["brand"][5])
    out = tmp_path / "tok2"
    result = CliRunner().invoke(
        app,
        [
            "text",
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--tokenizer",
            str(tmp_path / "tok" / "tokenizer.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert load_item_tokens(out).meta["tokenizer_hash"] == tokens.meta["tokenizer_hash"]
    with pytest.raises(SystemExit) as exit_info:
        main(["text", "train", "--data", str(data), "--out", str(out), "--set", "vocab_size=2"])
    assert exit_info.value.code == 2
    assert "vocab_size" in capsys.readouterr().err


def test_cold_start_vector_equals_catalog_vector(tmp_path: Path) -> None:
    """An item encoded from raw text at serving time gets its catalog vector."""
    import torch

    from scalerec.model import SequentialRecommender
    from scalerec.model.sizes import model_config

    build_token_table(_write_items(tmp_path / "ds"), tmp_path / "tok", vocab_size=90)
    table = load_item_tokens(tmp_path / "tok")
    cfg = model_config("tiny", vocab_size=table.vocab_size, field_max_len=table.meta["fields"])
    model = SequentialRecommender(cfg).eval()
    model.set_item_table(table.torch_tables())
    title, brand, cats = ROWS[3]  # item id 4
    fresh = encode_items(load_tokenizer(tmp_path / "tok"), [title], [brand], [cats], table.meta["fields"])
    with torch.no_grad():
        torch.testing.assert_close(
            model.encode_tokens(fresh.torch_tables()), model.encode_items(torch.tensor([4]))
        )
