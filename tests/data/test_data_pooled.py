"""A pooled multi-domain dataset (`[[domains]]`): users and items namespaced per domain, a `domain`
column, each domain exactly what it would be alone, the same on the in-memory and sharded paths."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from scalerec.config import load
from scalerec.data import DomainSource, PrepareConfig, prepare, synthesize
from scalerec.errors import UserError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("raw")
    return {
        "shop": synthesize("amazon2018", 4_000, root / "shop", seed=5, malformed_rate=0.01),
        "films": synthesize("movielens-100k", 3_000, root / "films", seed=6),
    }


def _domains(raws, **shop_kw) -> list[DomainSource]:
    shop, films = raws["shop"], raws["films"]
    return [
        DomainSource("shop", "amazon2018", [shop["ratings"]], [shop["meta"]], **shop_kw),
        DomainSource("films", "movielens", [films["ratings"]], [films["movies"]]),
    ]


def _alone(raws, name: str, out: Path, **kw) -> dict:
    raw = raws[name]
    if name == "shop":
        return prepare(PrepareConfig(ratings=[raw["ratings"]], meta=[raw["meta"]], out=out, **kw))
    return prepare(
        PrepareConfig(source="movielens", ratings=[raw["ratings"]], meta=[raw["movies"]], out=out, **kw)
    )


def test_pooled_is_the_union_of_namespaced_domains(raws, tmp_path):
    card = prepare(PrepareConfig(domains=_domains(raws), out=tmp_path / "pool", subsets=["2K"]))
    inter = pl.read_parquet(tmp_path / "pool" / "interactions.parquet")
    items = pl.read_parquet(tmp_path / "pool" / "items.parquet")
    users = pl.read_parquet(tmp_path / "pool" / "users.parquet")
    assert inter.columns == ["user_id", "item_id", "timestamp", "rating", "domain"]
    assert items.columns[-1] == "domain" and card["source"]["format"] == "pooled"
    # every user and item lives in one domain, and its key says which
    assert inter.group_by("user_id").agg(pl.col("domain").n_unique())["domain"].max() == 1
    key_domain = users.with_columns(pl.col("user_key").str.extract(r"^([^:]*):", 1).alias("d"))
    joined = inter.join(key_domain, on="user_id")
    assert (joined["domain"] == joined["d"]).all()
    assert (items["item_key"].str.starts_with(items["domain"] + ":")).all()
    by_item = inter.join(items.select("item_id", pl.col("domain").alias("d")), on="item_id")
    assert (by_item["domain"] == by_item["d"]).all()
    # each domain holds exactly what it holds when prepared alone
    for name in ("shop", "films"):
        alone = _alone(raws, name, tmp_path / name)
        part = inter.filter(pl.col("domain") == name)
        assert len(part) == alone["n_interactions"]
        assert part["user_id"].n_unique() == alone["n_users"]
        assert part["item_id"].n_unique() == alone["n_items"]
    sub = pl.read_parquet(tmp_path / "pool" / "subsets" / "2K" / "interactions.parquet")
    assert "domain" in sub.columns and sub["domain"].n_unique() == 2


def test_same_keys_in_two_domains_stay_apart(raws, tmp_path):
    twin = [
        DomainSource("a", "amazon2018", [raws["shop"]["ratings"]], [raws["shop"]["meta"]]),
        DomainSource("b", "amazon2018", [raws["shop"]["ratings"]], [raws["shop"]["meta"]]),
    ]
    pooled = prepare(PrepareConfig(domains=twin, out=tmp_path / "twin"))
    alone = _alone(raws, "shop", tmp_path / "alone")
    assert pooled["n_users"] == 2 * alone["n_users"]
    assert pooled["n_items"] == 2 * alone["n_items"]
    assert pooled["n_interactions"] == 2 * alone["n_interactions"]


def test_sharded_pooled_equals_in_memory(raws, tmp_path):
    kw = {"domains": _domains(raws), "subsets": ["1K", "3K"]}
    mem = prepare(PrepareConfig(out=tmp_path / "mem", shard_above_rows=10**12, **kw))
    sh = prepare(PrepareConfig(out=tmp_path / "sh", shard_above_rows=0, shards=4, **kw))
    assert mem["dataset_hash"] == sh["dataset_hash"] and mem["subsets"] == sh["subsets"]
    for rel in ("interactions.parquet", "items.parquet", "users.parquet", "subsets/3K/interactions.parquet"):
        assert pl.read_parquet(tmp_path / "mem" / rel).equals(pl.read_parquet(tmp_path / "sh" / rel)), rel


def test_per_domain_title_rule_and_exclusions(raws, tmp_path):
    strict = prepare(PrepareConfig(domains=_domains(raws), out=tmp_path / "strict"))
    assert strict["dropped"]["junk_title"] > 0  # the shop dump has junk titles (malformed_rate)
    lax = prepare(PrepareConfig(domains=_domains(raws, require_title=False), out=tmp_path / "lax"))
    assert lax["dropped"]["junk_title"] == 0 and lax["n_interactions"] > strict["n_interactions"]
    # a downstream user list holds raw keys: the user is excluded from the domain it appears in
    users = pl.read_parquet(tmp_path / "strict" / "users.parquet")["user_key"]
    victim = users.filter(users.str.starts_with("films:"))[0].split(":", 1)[1]
    keys = tmp_path / "downstream.txt"
    keys.write_text(victim + "\n")
    out = prepare(PrepareConfig(domains=_domains(raws), exclude_users=[keys], out=tmp_path / "excl"))
    assert out["n_users"] == strict["n_users"] - 1 and out["dropped"]["excluded_users"] > 0


def test_domain_config_errors(raws, tmp_path):
    with pytest.raises(UserError, match="leave ratings, meta and columns empty"):
        load(PrepareConfig, base={"ratings": ["x"], "domains": [{"name": "a", "ratings": ["y"]}]})
    with pytest.raises(UserError, match="unique and non-empty"):
        load(
            PrepareConfig,
            base={"domains": [{"name": "a", "ratings": ["y"]}, {"name": "a", "ratings": ["z"]}]},
        )
    with pytest.raises(UserError, match="must use letters"):
        load(PrepareConfig, base={"domains": [{"name": "a:b", "ratings": ["y"]}]})


def test_shipped_pooled_config_lists_every_text_domain_but_beauty():
    cfg = load(PrepareConfig, REPO / "configs" / "data" / "pooled.toml")
    names = [d.name for d in cfg.domains]
    assert names == ["games", "scientific", "magazine", "gift_cards", "office", "sports", "yelp", "ml100k"]
    assert not any("beauty" in str(p).lower() for d in cfg.domains for p in [*d.ratings, *d.meta])
    assert any("beauty" in str(p) for p in cfg.exclude_users)


@pytest.mark.slow
def test_pooled_real_corpus(shared_data, tmp_path):
    """The real corpus (about 13 s on 2 cores): the counts reported for issue 18 item 5."""
    cfg = load(PrepareConfig, REPO / "configs" / "data" / "pooled.toml", base={})
    cfg.out = tmp_path / "pooled"
    card = prepare(cfg)
    assert (card["n_users"], card["n_items"], card["n_interactions"]) == (129_791, 63_975, 1_251_328)
    inter = pl.read_parquet(cfg.out / "interactions.parquet")
    counts = dict(inter.group_by("domain").len().iter_rows())
    assert (
        counts == json.loads((REPO / "docs/results/pooled_corpus/domains.json").read_text())["interactions"]
    )
