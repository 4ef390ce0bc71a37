"""Real public data through `prepare`: the counts the literature and each SOURCE.md report.

Files live in ../shared/data (see each folder's SOURCE.md); the tests skip when it is absent.
"""

from __future__ import annotations

import csv
import gzip
import io
import json

import polars as pl

from scalerec.data.build.card import read_card
from scalerec.data.build.prepare import PrepareConfig, prepare


def _prep(tmp_path, **kw):
    out = tmp_path / "ds"
    card = prepare(PrepareConfig(out=out, **kw))
    return card, out


def _counts(card):
    return card["n_users"], card["n_items"], card["n_interactions"]


def test_beauty_s3rec_with_titles(shared_data, tmp_path):
    d = shared_data / "amazon_beauty_2014_5core"
    card, out = _prep(
        tmp_path, source="s3rec", ratings=[d / "Beauty.txt"], meta=[d / "items.tsv.gz"], require_title=False
    )
    assert _counts(card) == (22_363, 12_101, 198_502)
    items = pl.read_parquet(out / "items.parquet")
    assert (items["title"] != "").sum() == 12_101 - 7  # SOURCE.md: 7 titles are empty strings
    first = items.filter(pl.col("item_key") == "B004756YJA").row(0, named=True)
    assert first["title"].startswith("OPI Nail Lacquer") and "Nail Polish" in first["categories"]
    inter = pl.read_parquet(out / "interactions.parquet")
    assert inter.group_by("user_id").len()["len"].min() == 5


def test_sports_s3rec_with_partial_titles(shared_data, tmp_path):
    d = shared_data / "amazon_sports_2014_5core"
    card, out = _prep(
        tmp_path,
        source="s3rec",
        ratings=[d / "Sports_and_Outdoors.txt"],
        meta=[d / "datamaps.json.gz", d / "items_partial.tsv.gz"],
        require_title=False,
    )
    assert _counts(card) == (35_598, 18_357, 296_337)
    items = pl.read_parquet(out / "items.parquet")
    assert items["item_key"].str.len_chars().min() == 10  # every item carries its ASIN
    assert (items["title"] != "").sum() == 1_923 + 1  # 1,923 non-empty + the literal "null"
    ghost = items.filter(pl.col("item_key") == "1881509818").row(0, named=True)
    assert ghost["title"] == "Ghost Inc Glock Armorers Tool 3/32 Punch"


def test_games_recbole_sequences(shared_data, tmp_path):
    d = shared_data / "amazon2018_games_llmrank"
    card, out = _prep(
        tmp_path, source="recbole", ratings=[d / "Games.test.inter.gz"], meta=[d / "Games.item.gz"]
    )
    assert _counts(card) == (50_546, 16_859, 440_264)
    inter = pl.read_parquet(out / "interactions.parquet")
    lengths = inter.group_by("user_id").len()["len"]
    assert lengths.min() == 5 and lengths.max() == 50  # history 4..49 + target


def test_ml100k_recbole(shared_data, tmp_path):
    d = shared_data / "movielens_100k_recbole"
    card, out = _prep(tmp_path, source="recbole", ratings=[d / "ml-100k.inter.gz"], meta=[d / "ml-100k.item"])
    assert _counts(card) == (943, 1_682, 100_000)
    items = pl.read_parquet(out / "items.parquet")
    toy = items.filter(pl.col("item_key") == "1").row(0, named=True)
    assert toy["title"] == "Toy Story" and toy["categories"] == ["Animation", "Children's", "Comedy"]


def _magazine_reference(d):
    """Independent plain-Python count of what the ETL must drop, by reason."""
    with gzip.open(d / "Magazine_Subscriptions.csv.gz", "rt") as fh:
        rows = [tuple(r) for r in csv.reader(fh)]
    unique = list(dict.fromkeys((r[1], r[0], r[3]) for r in rows))
    with gzip.open(d / "meta_Magazine_Subscriptions.json.gz", "rt") as fh:
        meta = [json.loads(line) for line in fh]
    good = {
        m["asin"] for m in meta if "<span" not in m["title"] and "/>" not in m["title"] and m["title"].strip()
    }
    asins = {m["asin"] for m in meta}
    no_meta = sum(1 for _, item, _ in unique if item not in asins)
    junk = sum(1 for _, item, _ in unique if item in asins and item not in good)
    return len(rows), len(rows) - len(unique), no_meta, junk, len(meta) - len(asins)


def test_magazine_raw_2018_drops_counted_by_reason(shared_data, tmp_path):
    d = shared_data / "amazon2018_magazine_subscriptions"
    card, out = _prep(
        tmp_path,
        source="amazon2018",
        ratings=[d / "Magazine_Subscriptions.csv.gz"],
        meta=[d / "meta_Magazine_Subscriptions.json.gz"],
        min_user_interactions=1,
    )
    n_rows, dup, no_meta, junk, dup_meta = _magazine_reference(d)
    assert card["source"]["rows_parsed"] == n_rows == 89_689
    assert card["dropped"]["malformed"] == 0
    assert card["dropped"]["duplicate"] == dup
    assert card["dropped"]["no_metadata"] == no_meta
    assert card["dropped"]["junk_title"] == junk
    assert card["metadata"]["duplicate_lines"] == dup_meta == 3_385 - 2_320
    assert card["metadata"]["raw_titles_junk"] == 3_153 + 10  # span fragments + ' Magazines" />'
    assert card["n_interactions"] == n_rows - dup - no_meta - junk
    assert not pl.read_parquet(out / "items.parquet")["title"].str.contains("<|/>").any()
    assert "junk_title" in (out / "CARD.md").read_text()


def test_gift_cards_5core_reviews_json(shared_data, tmp_path):
    d = shared_data / "amazon2018_gift_cards"
    card, _ = _prep(
        tmp_path,
        source="amazon2018",
        ratings=[d / "Gift_Cards_5.json.gz"],
        meta=[d / "meta_Gift_Cards.json.gz"],
        min_user_interactions=1,
    )
    assert card["source"]["rows_parsed"] == 2_972
    assert card["steps"][0]["users"] == 458 and card["steps"][0]["items"] == 148
    assert card["dropped"]["no_metadata"] == 0


def test_movielens_1m_items_file(shared_data, tmp_path):
    """ml-1m ratings are not available here: items come from the real movies.dat (latin-1, `::`),
    ratings from a fixture in the published `UserID::MovieID::Rating::Timestamp` schema."""
    d = shared_data / "movielens_1m"
    ratings = tmp_path / "ratings.dat"
    lines = [
        f"{u}::{m}::{(u + m) % 5 + 1}::{978300760 + u * 100 + k}"
        for u in range(1, 31)
        for k, m in enumerate((1, 2, 3, 5, 6, 3952))
    ]
    ratings.write_text("\n".join(lines) + "\n")
    card, out = _prep(tmp_path, source="movielens", ratings=[ratings], meta=[d / "movies.dat"])
    assert _counts(card) == (30, 6, 180)
    items = pl.read_parquet(out / "items.parquet")
    assert items.filter(pl.col("item_key") == "1")["title"].item() == "Toy Story (1995)"
    assert read_card(out)["n_items"] == 6
    buf = io.StringIO((out / "CARD.md").read_text())
    assert buf.readline().startswith("# Dataset card")


def test_exclude_downstream_users(tmp_path):
    from scalerec.data.ingest.synthetic_formats import synthesize

    raw = synthesize("amazon2018", 20_000, tmp_path / "raw", seed=3)
    base = dict(source="amazon2018", ratings=[raw["ratings"]], meta=[raw["meta"]])
    a = tmp_path / "a"
    prepare(PrepareConfig(out=a, subsets=["5K"], **base))
    downstream = a / "subsets" / "5K"
    card = prepare(PrepareConfig(out=tmp_path / "b", exclude_users=[downstream], **base))
    kept = set(pl.read_parquet(tmp_path / "b" / "users.parquet")["user_key"])
    gone = set(pl.read_parquet(downstream / "users.parquet")["user_key"])
    assert not kept & gone
    assert card["dropped"]["excluded_users"] >= read_card(downstream)["n_interactions"]
    assert card["n_users"] == read_card(a)["n_users"] - len(gone)


def test_sports_without_beauty_users(shared_data, tmp_path):
    """The paper's overlap removal: S3Rec user ids map to reviewerIDs through the P5 datamaps, and the
    1,625 Sports users who also rated Beauty are removed."""
    d = shared_data / "amazon_sports_2014_5core"
    card, out = _prep(
        tmp_path,
        source="s3rec",
        ratings=[d / "Sports_and_Outdoors.txt"],
        meta=[d / "datamaps.json.gz"],
        require_title=False,
        exclude_users=[shared_data / "amazon_beauty_2014_5core" / "datamaps.json.gz"],
    )
    users = pl.read_parquet(out / "users.parquet")
    assert users["user_key"].str.starts_with("A").all()
    assert card["n_users"] == 35_598 - 1_625
    assert card["dropped"]["excluded_users"] > 1_625 * 5 - 1
