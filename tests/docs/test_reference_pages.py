"""The generated reference pages and the repository's Markdown links (docs/hooks/gen_pages.py).

The config page is built from the dataclasses, so a new config field without a docstring, or a
figure in BENCHMARKS.md pointing at a log that was moved or deleted, fails here instead of shipping.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench_scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gen_pages():
    return load_script("docs/hooks/gen_pages.py")


def test_every_config_key_has_a_docstring(gen_pages) -> None:
    for _, _, dotted in gen_pages.CONFIGS:
        rows = gen_pages.config_rows(gen_pages._resolve(dotted))
        assert rows, dotted
        assert [r["key"] for r in rows if not r["doc"]] == [], dotted


def test_config_rows_flatten_sections_with_their_defaults(gen_pages) -> None:
    from scalerec.model.config import ModelConfig
    from scalerec.train.config import RunConfig

    rows = {r["key"]: r for r in gen_pages.config_rows(RunConfig)}
    assert rows["model.d_model"]["default"] == f"`{ModelConfig().d_model!r}`"
    assert rows["data.tokens"]["default"] == "unset"
    assert "train.lr" in rows and "eval.ks" in rows and "run.seed" in rows
    assert "model" not in rows  # nested sections are flattened, not listed as keys


def test_field_docs_reads_attribute_docstrings(gen_pages) -> None:
    from dataclasses import dataclass

    @dataclass
    class Example:
        a: int = 1
        """first"""
        b: int = 2
        c: int = 3
        """third"""

    assert gen_pages.field_docs(Example) == {"a": "first", "c": "third"}


def test_cli_page_lists_every_command(gen_pages) -> None:
    page = gen_pages.cli_page()
    headings = set(re.findall(r"^#+ `(scalerec[^`]*)`$", page, re.M))
    expected = {
        "scalerec train",
        "scalerec evaluate",
        "scalerec data prepare",
        "scalerec data synth",
        "scalerec text train",
        "scalerec serve",
        "scalerec finetune",
    }
    assert expected <= headings  # subcommands of groups (data, text) too
    assert "`--data <path>`" in page


def _links(text: str) -> list[str]:
    return [m for m in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", m)]


@pytest.mark.parametrize("name", ["BENCHMARKS.md", "CHANGELOG.md", "README.md"])
def test_relative_links_of_root_pages_exist(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    missing = [link for link in _links(text) if not (ROOT / link.split("#")[0]).exists()]
    assert missing == []


def test_root_pages_are_rewritten_for_the_site(gen_pages) -> None:
    page = gen_pages.root_page("BENCHMARKS.md")
    assert "](docs/" not in page
    docs = ROOT / "docs"
    targets = [link.split("#")[0] for link in _links(page)]
    missing = [t for t in targets if not (docs / t).exists() and t not in gen_pages.GENERATED]
    assert missing == []
    assert "changelog.md" in targets  # the generated page is what the rewritten link points to
