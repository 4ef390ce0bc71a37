"""Adapter from a trained run dir to the service's `Encoder` protocol, and the catalog it serves.

The run is loaded only through `scalerec.rundir.load_run` (its `meta.json` names the
model config, dataset and token table), so any complete run dir can be served. A history becomes
the model's hidden state after its last item (the same user vector evaluation ranks with); a new
item is tokenized with the run's own tokenizer and encoded from its text, and its token row is
appended to the model's item table so it can also appear in later histories. That row takes its
field widths from the token table it joins (never from the model config, whose widths are only a
cap on what the model reads: `text train` writes 40-token titles while the model's default is 32).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from scalerec.data.read.sequences import UserSequences, pad_left
from scalerec.errors import UserError
from scalerec.rundir import load_run, verify_dataset
from scalerec.serve.query_engine import QUERY_ENGINES, QueryEngine, build_query_body
from scalerec.serve.recommender import Item, Recommender, ServeConfig
from scalerec.text.item_tokens import encode_items, load_item_tokens
from scalerec.text.tokenizer import load_tokenizer

QUERY_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""Precisions the transformer may run in when it encodes histories (item vectors stay float32)."""

ITEM_CACHE_MAX_BYTES = 2**30
"""Largest catalog (float32 vectors) whose item vectors `encode_catalog` keeps for request histories
when `cache_items` is left to decide: a 1M-item, d 256 catalog (0.95 GiB) fits. Reading a history's
vectors from that table instead of running the text encoder over its items' token rows took the
'items' stage of a 1M-item request from 0.73-0.90 ms to 0.15 ms on the 2-core VM
(docs/results/serve/vm_2026-12-04_cpu_model_int8_pq4fsr); the price is the table's memory next to
the index's."""


class RunEncoder:
    """`Encoder` over a trained `SequentialRecommender` (text, id or hybrid item encoder)."""

    def __init__(
        self,
        run_dir: str | Path,
        device: str = "cpu",
        tokens_dir: str | Path | None = None,
        dtype: str = "float32",
        allow_unfinished: bool = False,
        new_catalog: bool = False,
        engine: QueryEngine = "eager",
        cache_items: bool | None = None,
    ) -> None:
        """`dtype` and `engine` choose how histories are encoded (`scalerec.serve.query_engine`);
        the model itself stays float32, and is the reference `reference_histories` runs.
        `cache_items`: keep the catalog's vectors from `encode_catalog` and read history items from
        them (text and hybrid encoders; None = when they take at most ITEM_CACHE_MAX_BYTES)."""
        if dtype not in QUERY_DTYPES:
            raise UserError(f"dtype must be one of {', '.join(QUERY_DTYPES)}, got {dtype!r}")
        if engine not in QUERY_ENGINES:
            raise UserError(f"query engine must be one of {', '.join(QUERY_ENGINES)}, got {engine!r}")
        if engine != "eager" and dtype != "float32":
            raise UserError(f"query engine {engine!r} runs float32 weights; drop dtype {dtype!r}")
        loaded = load_run(
            run_dir, device, tokens_dir, allow_unfinished=allow_unfinished, new_catalog=new_catalog
        )
        self.model, self.meta, self.device = loaded.model, loaded.meta, torch.device(device)
        check_finite_weights(self.model, Path(run_dir))
        self.query_dtype, self.engine = QUERY_DTYPES[dtype], engine
        self.body = build_query_body(self.model, engine, self.query_dtype)
        self.last_split: dict[str, float] = {}  # ms of the last encode_histories call, by stage
        self.max_len = int(self.model.cfg.max_len)
        self.text = self.model.cfg.has_text  # hybrid too: a new item's ID part is zero
        self.tokenizer, self.tables = None, None
        self.tokens_dir = Path(tokens_dir or self.meta.get("tokens_dir") or ".")
        if self.text:
            self.tables = load_item_tokens(self.tokens_dir).torch_tables()
        self.table_widths = {f: int(t.shape[1]) for f, t in (self.tables or {}).items()}
        self.cache_items = cache_items
        self.item_cache: torch.Tensor | None = None  # [n_items + 1, d] float32 once encode_catalog ran

    @torch.no_grad()
    def encode_catalog(self) -> np.ndarray:
        """[n_items, d] float32 vectors of catalog items 1..n (kept for request histories when
        `cache_items` says so: the same vectors `encode_items` would compute for them). The array
        then shares the cache's memory, so the catalog is held once: read it, do not write to it."""
        vectors = self.model.all_item_vectors().float()
        fits = vectors.numel() * vectors.element_size() <= ITEM_CACHE_MAX_BYTES
        keep = self.text and (fits if self.cache_items is None else self.cache_items)
        self.item_cache = vectors if keep else None
        return vectors[1:].cpu().numpy()

    def _item_vectors(self, ids: torch.Tensor) -> torch.Tensor:
        """Item vectors of `ids` (0 = padding): from the catalog cache when every id is in it (a
        cold-start item added since is not), else from the item encoder."""
        cache = self.item_cache
        if cache is not None and int(ids.max()) < cache.shape[0]:
            return cache[ids]
        return self.model.encode_items(ids)

    def encode_history(self, ids: Sequence[int]) -> np.ndarray:
        """Hidden state after the last of (at most `max_len` most recent) `ids`: [d] float32."""
        return self.encode_histories([ids])[0]

    @torch.inference_mode()
    def encode_histories(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """`encode_history` for a micro-batch: [Q, d] float32. Histories of similar length share a
        forward pass (`length_groups`), so one long history does not pad a whole batch to its length.
        The transformer runs as the query engine / dtype say (`scalerec.serve.query_engine`).
        `last_split` then holds its stages in ms: items (history ids → item vectors, the text
        encoder on each item's token rows) and transformer (the query pass, last position read)."""
        return self._encode(histories, self.body, self.query_dtype)

    def reference_histories(self, histories: Sequence[Sequence[int]]) -> np.ndarray | None:
        """The same histories through the float32 eager model, or None when that is what
        `encode_histories` already runs: the truth an approximate engine's recall is measured on."""
        if self.engine == "eager" and self.query_dtype == torch.float32:
            return None
        with torch.inference_mode():
            return self._encode(histories, build_query_body(self.model, "eager"), torch.float32)

    def _encode(
        self, histories: Sequence[Sequence[int]], body: torch.nn.Module, dtype: torch.dtype
    ) -> np.ndarray:
        t0 = time.perf_counter()
        padded, lengths = pad_left(UserSequences.from_lists([list(h) for h in histories]), self.max_len)
        out = np.empty((len(lengths), self.model.cfg.d_model), dtype=np.float32)
        items_s = time.perf_counter() - t0  # padding the ids is part of "items"
        for rows in length_groups(lengths):
            t = time.perf_counter()
            width = int(lengths[rows].max())  # no columns that only hold padding
            inputs = torch.from_numpy(padded[rows, :width]).to(self.device)
            vectors = self._item_vectors(inputs).to(dtype)
            items_s += time.perf_counter() - t
            hidden = body(vectors)  # [G, width, d]
            last = torch.from_numpy(np.maximum(lengths[rows] - 1, 0)).to(self.device)
            out[rows] = hidden[torch.arange(len(rows), device=self.device), last].float().cpu().numpy()
        total = time.perf_counter() - t0
        self.last_split = {"items": items_s * 1e3, "transformer": (total - items_s) * 1e3}
        return out

    @torch.no_grad()
    def encode_new_item(self, title: str, brand: str, categories: Sequence[str]) -> np.ndarray:
        """Vector of an unseen item from its text; the item takes the next id in the item table."""
        if not self.text:
            raise UserError("this run embeds items by id; cold-start items need a text or hybrid run")
        if self.tables is None:  # loaded in __init__ for every text run
            raise RuntimeError("a text-encoder run without its item token tables")

        if self.tokenizer is None:  # only cold start needs it
            self.tokenizer = load_tokenizer(self.tokens_dir / "tokenizer.json")
        toks = encode_items(self.tokenizer, [title], [brand], [list(categories)], self.table_widths)
        row = {f: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int32)) for f, a in toks.fields.items()}
        vec = self.model.encode_tokens({f: t.to(self.device) for f, t in row.items()})[0]
        self.tables = {f: torch.cat([t, row[f].to(t.device)]) for f, t in self.tables.items()}
        self.model.set_item_table({f: t.to(self.device) for f, t in self.tables.items()})
        return vec.float().cpu().numpy()


GROUP_OVERHEAD_TOKENS = 48
"""Fixed cost of one forward pass in units of one position's cost (paper-1M on one CPU core: ~6 ms
per call against ~0.13 ms per position); what a split of the batch must save to be worth it."""


def length_groups(lengths: np.ndarray, overhead: int = GROUP_OVERHEAD_TOKENS) -> list[np.ndarray]:
    """Split a batch into forward passes of similar-length rows: the partition of the rows sorted by
    length that minimises sum(overhead + rows x longest) (exact dynamic programme; Q <= a few hundred).
    Real histories are short with a long tail (mean ~9, max 50), so a 64-query batch padded to its
    longest row would spend most of its positions on padding."""
    order = np.argsort(lengths, kind="stable")
    sorted_len = lengths[order].tolist()
    n = len(sorted_len)
    best, cut = [0.0] * (n + 1), [0] * (n + 1)
    for j in range(1, n + 1):  # best[j]: cheapest split of the j shortest rows
        width = sorted_len[j - 1]
        best[j], cut[j] = min((best[i] + overhead + width * (j - i), i) for i in range(j))
    groups, j = [], n
    while j > 0:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


def check_finite_weights(model: torch.nn.Module, run_dir: Path) -> None:
    """Refuse a diverged run: NaN/Inf weights give NaN scores, which every ranking then puts first
    (a broken model would be served as if it were perfect)."""
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()]
    if bad:
        raise UserError(
            f"{run_dir / 'model.safetensors'}: {len(bad)} weight tensor(s) hold NaN/Inf (first: {bad[0]}); "
            "the run diverged (lr or temperature too high?) and cannot be served"
        )


def load_items(dataset_dir: str | Path) -> list[Item]:
    """Catalog metadata from `items.parquet` (rows in item_id order 1..n)."""
    import pyarrow.parquet as pq

    path = Path(dataset_dir) / "items.parquet"
    if not path.is_file():
        raise UserError(f"items file not found: {path}")
    cols = pq.read_table(path, columns=["item_id", "item_key", "title", "brand", "categories"]).to_pydict()
    if cols["item_id"] != list(range(1, len(cols["item_id"]) + 1)):
        raise UserError(f"{path}: item_id must be 1..n_items in order")
    return [
        Item(str(k), t or "", b or "", list(c or []))
        for k, t, b, c in zip(cols["item_key"], cols["title"], cols["brand"], cols["categories"], strict=True)
    ]


def load_recommender(
    run_dir: str | Path,
    cfg: ServeConfig | None = None,
    device: str = "cpu",
    dataset_dir: str | Path | None = None,
    tokens_dir: str | Path | None = None,
    dtype: str = "float32",
    tune_histories: Sequence[Sequence[int]] | None = None,
    allow_unfinished: bool = False,
    engine: QueryEngine = "eager",
) -> Recommender:
    """A `Recommender` serving a trained run: item vectors computed now, index built now.

    The run must be finished and its files must match the hashes in its meta.json (see
    `scalerec.rundir`); `allow_unfinished` serves the last best weights of a stopped run.
    `dataset_dir` + `tokens_dir` serve a text run over another catalog than its training one
    (items.parquet and a token table built with the run's tokenizer, `text train --tokenizer`):
    then the tokenizer, not the item table, is what must match the run. `dtype` / `engine`: how
    histories are encoded (`RunEncoder`)."""
    run_dir = Path(run_dir)
    new_catalog = tokens_dir is not None
    encoder = RunEncoder(run_dir, device, tokens_dir, dtype, allow_unfinished, new_catalog, engine)
    dataset = dataset_dir or encoder.meta.get("dataset_dir")
    if not dataset:
        raise UserError(f"{run_dir / 'meta.json'}: no dataset_dir recorded; pass the dataset dir")
    if not new_catalog:
        verify_dataset(encoder.meta, dataset)
    items = load_items(dataset)
    n_model = encoder.model.n_items
    if n_model and n_model != len(items):
        raise UserError(
            f"{run_dir}: the model knows {n_model} items but {dataset}/items.parquet has {len(items)}"
        )
    return Recommender(encoder, items, cfg, tune_histories)
