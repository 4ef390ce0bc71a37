"""`--source csv`: the user's own CSV/Parquet interactions and item table, with a column mapping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from scalerec.data import PrepareConfig, prepare
from scalerec.errors import UserError

EVENTS = """customer,sku,when,stars
u1,p1,2021-01-01,5
u1,p2,2021-01-02,4
u1,p3,2021-01-03,
u1,p1,2021-01-04,3
u2,p2,1609459200,5
u2,p3,1609545600,2
u2,p4,1609632000,1
u3,p1,2021-02-01T10:00:00,4
u3,p4,2021-02-02T10:00:00,4
u3,,2021-02-03T10:00:00,4
u3,p2,not a date,4
u3,p3,2021-02-04T10:00:00,x
u3,p2,2021-02-06,5
"""
ITEMS = """sku,name,maker,tags
p1,"Blue mug, large",Acme,kitchen|mugs
p2,Red pen,Penco,office
p3,Notebook,,office|paper
p4,Desk lamp,Lumo,
"""
COLUMNS = {"user": "customer", "item": "sku", "timestamp": "when", "rating": "stars"}
ITEM_COLUMNS = {"title": "name", "brand": "maker", "categories": "tags"}


@pytest.fixture
def own(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "items.csv").write_text(ITEMS)
    return {"ratings": tmp_path / "events.csv", "meta": tmp_path / "items.csv"}


def _cfg(own: dict[str, Path], out: Path, **kw) -> PrepareConfig:
    return PrepareConfig(
        source="csv",
        ratings=[own["ratings"]],
        meta=[own["meta"]],
        columns={**COLUMNS, **ITEM_COLUMNS},
        min_user_interactions=3,
        out=out,
        **kw,
    )


def test_csv_with_mapping_dates_and_item_text(own, tmp_path):
    card = prepare(_cfg(own, tmp_path / "ds"))
    assert card["parse"]["counts"] == {"empty_id": 1, "bad_timestamp": 1, "bad_rating": 1}
    assert (card["n_users"], card["n_items"], card["n_interactions"]) == (3, 4, 10)
    users = pl.read_parquet(tmp_path / "ds" / "users.parquet")
    items = pl.read_parquet(tmp_path / "ds" / "items.parquet").sort("item_key")
    inter = pl.read_parquet(tmp_path / "ds" / "interactions.parquet")
    assert items["title"].to_list() == ["Blue mug, large", "Red pen", "Notebook", "Desk lamp"]
    assert items["brand"].to_list() == ["Acme", "Penco", "", "Lumo"]
    assert items["categories"].to_list() == [["kitchen", "mugs"], ["office"], ["office", "paper"], []]
    u1 = users.filter(pl.col("user_key") == "u1")["user_id"].item()
    rows = inter.filter(pl.col("user_id") == u1)
    key_of = dict(zip(items["item_id"].to_list(), items["item_key"].to_list(), strict=True))
    assert [key_of[i] for i in rows["item_id"].to_list()] == ["p1", "p2", "p3", "p1"]  # by date
    assert rows["timestamp"].to_list()[0] == 1609459200  # 2021-01-01 in unix seconds
    assert rows["rating"].to_list()[2] is None  # an empty rating is "no rating", not a bad line


def test_parquet_interactions_equal_csv(own, tmp_path):
    table = pl.read_csv(own["ratings"], infer_schema=False)
    pq_path = tmp_path / "events.parquet"
    table.write_parquet(pq_path)
    a = prepare(_cfg(own, tmp_path / "a"))
    b = prepare(_cfg({**own, "ratings": pq_path}, tmp_path / "b"))
    assert a["dataset_hash"] == b["dataset_hash"] and a["parse"]["counts"] == b["parse"]["counts"]


def test_missing_column_names_it_and_lists_the_header(own, tmp_path):
    with pytest.raises(
        UserError, match=r"events\.csv: no column 'user_id' for user \(columns: customer, sku"
    ):
        prepare(PrepareConfig(source="csv", ratings=[own["ratings"]], out=tmp_path / "ds"))
    with pytest.raises(UserError, match=r"unknown key\(s\) \['usr'\]"):
        cfg = PrepareConfig(source="csv", ratings=[own["ratings"]], columns={"usr": "x"}, out=tmp_path / "b")
        prepare(cfg)


def test_no_item_table_keeps_ids_without_text(own, tmp_path):
    cfg = PrepareConfig(
        source="csv", ratings=[own["ratings"]], columns=COLUMNS, min_user_interactions=3, out=tmp_path / "ds"
    )
    card = prepare(cfg)
    assert card["n_users"] == 3
    assert set(pl.read_parquet(tmp_path / "ds" / "items.parquet")["title"].to_list()) == {""}


def test_cli_csv_and_min_users_threshold(own, tmp_path):
    base = [sys.executable, "-m", "scalerec", "data", "prepare", "--source", "csv"]
    files = ["--ratings", str(own["ratings"]), "--meta", str(own["meta"])]
    cols = [
        "--columns",
        "user=customer,item=sku,timestamp=when,rating=stars,title=name,brand=maker,categories=tags",
    ]
    env = {**os.environ, "COLUMNS": "400"}
    ok = subprocess.run(
        [*base, *files, *cols, "--set", "min_user_interactions=3", "--out", str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert "prepared 3 users" in ok.stdout
    few = subprocess.run(
        [
            *base,
            *files,
            *cols,
            "--min-users",
            "5",
            "--set",
            "min_user_interactions=3",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert few.returncode == 2
    assert "kept 3 users, fewer than min_users=5" in few.stderr and "top drop reasons" in few.stderr
    assert not (tmp_path / "x").exists()
