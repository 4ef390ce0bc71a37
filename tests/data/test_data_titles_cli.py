"""Title cleaning rules and the `scalerec data` commands end to end."""

from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from scalerec.data.build.subsets import parse_size
from scalerec.data.ingest.titles import clean_items
from scalerec.errors import UserError


def _items(titles):
    n = len(titles)
    return pl.DataFrame(
        {
            "join_key": [f"k{i % 3}" for i in range(n)],
            "item_key": [f"k{i % 3}" for i in range(n)],
            "title": titles,
            "brand": [" B "] * n,
            "categories": [["c"]] * n,
        }
    )


def test_junk_and_html_titles_are_flagged_and_duplicates_keep_the_best():
    raw = _items(
        [
            '<span class="a-size-medium a-color-secondary"',  # k0: junk ...
            "var ue_t0=ue_t0||+new Date(); x.getTime();",  # k1: junk ...
            "Fish &amp; Chips <b>Weekly</b>",  # k2: markup, cleaned
            "Reason Magazine",  # k0 again: a usable duplicate wins
            ' Magazines" />',  # k1 again: still junk
            None,  # k2 again: missing title, loses to the first k2
        ]
    )
    out, counts = clean_items(raw)
    got = {r["join_key"]: (r["title"], r["title_issue"]) for r in out.iter_rows(named=True)}
    assert got == {
        "k0": ("Reason Magazine", None),
        "k1": ("", "junk_title"),
        "k2": ("Fish & Chips Weekly", None),
    }
    assert (
        counts["duplicate_lines"] == 3 and counts["raw_titles_junk"] == 3 and counts["items_junk_title"] == 1
    )
    assert out["brand"].to_list() == ["B", "B", "B"]


def test_parse_size():
    assert [parse_size(s) for s in ("100K", "1M", "1.5m", "2500", "10B")] == [
        100_000,
        1_000_000,
        1_500_000,
        2_500,
        10_000_000_000,
    ]
    with pytest.raises(UserError):
        parse_size("lots")


def test_cli_synth_prepare_card(tmp_path):
    from scalerec.cli import app

    runner = CliRunner()
    raw = tmp_path / "raw"
    res = runner.invoke(
        app, ["data", "synth", "--format", "amazon2018", "--interactions", "3000", "--out", str(raw)]
    )
    assert res.exit_code == 0, res.output
    out = tmp_path / "ds"
    res = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "--source",
            "amazon2018",
            "--ratings",
            str(raw / "ratings.csv"),
            "--meta",
            str(raw / "meta.json.gz"),
            "--out",
            str(out),
            "--subsets",
            "1K",
            "--set",
            "min_user_interactions=3",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (out / "subsets" / "1K" / "interactions.parquet").is_file()
    res = runner.invoke(app, ["data", "card", str(out)])
    assert res.exit_code == 0 and "min_user_interactions" in res.output


def test_cli_errors_are_one_line(tmp_path, capsys):
    from scalerec.cli import main

    with pytest.raises(SystemExit) as exc:
        main(
            [
                "data",
                "prepare",
                "--source",
                "amazon2018",
                "--ratings",
                str(tmp_path / "nope.csv"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "nope.csv" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main(["data", "prepare", "--ratings", "x", "--set", "min_user_interaction=3"])
    assert exc.value.code == 2 and "did you mean" in capsys.readouterr().err
