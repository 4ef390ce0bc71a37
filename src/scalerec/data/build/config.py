"""What `scalerec data prepare` is asked to do: one typed config, all of it recorded in the card."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scalerec.data.build.subsets import parse_size
from scalerec.data.ingest.sources import SOURCES

SourceName = Literal["amazon2014", "amazon2018", "amazon2023", "movielens", "recbole", "s3rec", "csv"]
"""`--source` values; each is a row of `scalerec.data.ingest.sources.SOURCES`."""


@dataclass
class DomainSource:
    """One domain of a pooled multi-domain dataset: its own raw format and files.

    Its users and items are namespaced as `<name>:<key>` (the same key in two domains is two
    users or two items), and its rows carry `domain = name` in interactions.parquet and items.parquet.
    """

    name: str
    """Domain name: letters, digits, `_`, `-` and `.` (it prefixes the domain's keys). Empty only
    for the single unnamed domain of a plain (not pooled) prepare: its keys keep no prefix."""
    source: SourceName = "amazon2018"
    """Raw format of this domain's files."""
    ratings: list[Path] = field(default_factory=list)
    """This domain's interaction files."""
    meta: list[Path] = field(default_factory=list)
    """This domain's item tables."""
    columns: dict[str, str] = field(default_factory=dict)
    """Column mapping for `source = "csv"` (see `PrepareConfig.columns`)."""
    require_title: bool | None = None
    """Override of `PrepareConfig.require_title` for this domain's items (None: the global one);
    e.g. false for a domain whose public title table is partial."""

    def __post_init__(self) -> None:
        if self.name and not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"domain name {self.name!r} must use letters, digits, '_', '-' or '.'")
        self.ratings = [Path(p) for p in self.ratings]
        self.meta = [Path(p) for p in self.meta]


@dataclass
class PrepareConfig:
    """Everything `scalerec data prepare` needs; all of it is recorded in the card."""

    source: SourceName = "amazon2018"
    """Raw format of the input files (`csv`: your own CSV/Parquet tables, see `columns`)."""
    ratings: list[Path] = field(default_factory=list)
    """Interaction files (ratings CSV, reviews JSON lines, u.data, .inter, S3Rec sequences, your table)."""
    meta: list[Path] = field(default_factory=list)
    """Item tables; several are merged on the item id, later ones filling empty fields."""
    columns: dict[str, str] = field(default_factory=dict)
    """`source = "csv"` only: our column → yours, for `user`, `item`, `timestamp`, `rating` (ratings
    table) and `item`, `title`, `brand`, `categories` (item table). Default: `user_id`, `item_id`,
    `timestamp`, `rating`, `title`, `brand`, `categories`; rating, brand and categories are optional."""
    domains: list[DomainSource] = field(default_factory=list)
    """Pooled multi-domain dataset: one entry per domain (`[[domains]]` in TOML). When set,
    `source`, `ratings`, `meta` and `columns` must be left empty."""
    out: Path = Path("data/dataset")
    """Output dataset dir. Replaced only by a complete new dataset, and only if it is empty or a
    previous `data prepare` output (its `.scalerec-output` marker); anything else is an error."""
    name: str = ""
    """Dataset name for the card (default: the output dir name)."""
    mode: Literal["lenient", "strict"] = "lenient"
    """strict: stop at the first bad line; lenient: skip and count it per reason."""
    max_bad_fraction: float = field(default=0.5, metadata={"range": "[0, 1]"})
    """Lenient mode: a file with more than this fraction of bad lines (or no readable line at all)
    is taken for the wrong format or a wrong file, and prepare stops naming it (exit 2)."""
    dedupe: bool = True
    """Drop repeated (user, item, timestamp) rows."""
    require_metadata: bool = True
    """Drop interactions whose item has no metadata row (needs `meta`)."""
    require_title: bool = True
    """Drop interactions whose item has no usable title (empty, HTML or script junk)."""
    min_user_interactions: int = field(default=5, metadata={"range": "[1, inf)"})
    """Drop users with fewer interactions (after the filters above)."""
    k_core: int = field(default=0, metadata={"range": "[0, inf)"})
    """If > 0, iteratively keep users and items with >= k_core interactions."""
    min_users: int = field(default=1, metadata={"range": "[1, inf)"})
    """Fewer users kept than this is an error (exit 2, with the top drop reasons); no output is written."""
    exclude_users: list[Path] = field(default_factory=list)
    """Dataset dirs, P5 datamaps.json or key lists whose users are removed (downstream overlap)."""
    subsets: list[str] = field(default_factory=list)
    """Nested subset sizes in interactions, e.g. 100K, 1M, 10M."""
    seed: int = field(default=0, metadata={"range": "[0, inf)"})
    """Seed of the user-order hash (subset membership and user ids)."""
    shard_above_rows: int = field(default=8_000_000, metadata={"range": "[0, inf)"})
    """Parsed rows above which rows spill to user-hash shards on disk and are processed one shard
    at a time (bounded memory; same output). 0: always; a huge value: never."""
    shards: int = field(default=64, metadata={"range": "[1, 1024]"})
    """Number of user-hash shards of the on-disk path (a power of two, at most 1024)."""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        self.ratings = [Path(p) for p in self.ratings]
        self.meta = [Path(p) for p in self.meta]
        self.exclude_users = [Path(p) for p in self.exclude_users]
        self.out = Path(self.out)
        if self.domains and (self.ratings or self.meta or self.columns):
            raise ValueError("with domains, leave ratings, meta and columns empty (set them per domain)")
        names = [d.name for d in self.domains]
        if len(set(names)) != len(names) or "" in names:
            raise ValueError(f"domain names must be unique and non-empty, got {names}")
        if self.min_user_interactions < 1 or self.k_core < 0 or self.min_users < 1:
            raise ValueError("min_user_interactions and min_users must be >= 1 and k_core >= 0")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")
        for s in self.subsets:
            parse_size(s)
        if self.shard_above_rows < 0 or not (
            1 <= self.shards <= 1024 and self.shards & (self.shards - 1) == 0
        ):
            raise ValueError("shard_above_rows must be >= 0 and shards a power of two in 1..1024")

    def inputs(self) -> list[DomainSource]:
        """The domains to read: the configured ones, or one unnamed domain from the top-level fields."""
        if self.domains:
            return self.domains
        return [DomainSource("", self.source, self.ratings, self.meta, self.columns)]

    def title_rules(self) -> tuple[bool, frozenset[str]]:
        """(whether the title filter runs at all, the domains whose items it spares)."""

        def need(d: DomainSource) -> bool:
            return self.require_title if d.require_title is None else d.require_title

        spared = frozenset(d.name for d in self.domains if not need(d))
        return any(need(d) for d in self.inputs()), spared

    def input_files(self) -> list[Path]:
        """Every file the run reads (what an output may never be placed over)."""
        files = [p for d in self.inputs() for p in [*d.ratings, *d.meta]]
        return files + list(self.exclude_users)
