"""A run dir on disk: save and load a trained model with the hashes that prove its files are its own.

A run dir is self-describing (nanochat's checkpoint manager): `model.safetensors` + `meta.json`
(format version, the `ModelConfig`, where the token table and dataset live, and SHA-256 of the
weights, the token table and the dataset card), `config.toml` (the resolved training config) and
`final.json` (written last by training: its presence means the run finished).

Every stage that reads a run (evaluate, recommend, serve, finetune, resume) goes through
`load_run` / `verify_run_files`, so each gets the same checks for free:

- an unfinished run (no `final.json`) is refused unless the caller allows it;
- the weights, token table and dataset card must hash to what `meta.json` recorded (a flipped byte
  or a token table rebuilt in place silently changes every score otherwise);
- every malformed file (missing, truncated, not JSON, `null`, weights that do not fit the recorded
  config) is a one-line `UserError` naming the file, never a traceback.

Hashing a multi-GB file on every load would be slow, so verified hashes are cached per file by
(size, mtime); the cache lives in the run dir (`.verified.json`) and in the process.

This module sits below eval, serve, transfer and train (it imports only model, text, config).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomllib
import torch

from scalerec.config import from_dict
from scalerec.errors import UserError
from scalerec.io import atomic_write, sha256_file, write_json
from scalerec.model import ModelConfig, SequentialRecommender
from scalerec.text.item_tokens import load_item_tokens

if TYPE_CHECKING:
    from scalerec.model import SequentialRecommender

FORMAT_VERSION = 1
TOKEN_FILES = ("token_table.json", "tokenizer.json", "item_tokens.npz")
"""Files of a token table dir whose bytes decide the item table (hashed into `tokens_sha256`)."""
FINISHED_MARKERS = ("final.json", "transfer.json")
"""Written last by `train` / `finetune`: a run dir holding one of them is complete."""
CACHE_NAME = ".verified.json"
_MEMO: dict[tuple[str, int, int], str] = {}


@dataclass
class LoadedRun:
    """A trained model back from its run dir, with the facts callers need, typed."""

    model: SequentialRecommender
    """In eval mode, on the requested device, with its item table set."""
    meta: dict[str, Any]
    """`meta.json` as written (format_version, model_config, hashes, paths, step)."""
    config: dict[str, Any] = field(default_factory=dict)
    """`config.toml` as a plain dict ({} when absent); `scalerec.train.config` types it."""
    run_dir: Path = Path(".")
    finished: bool = True
    """Whether `final.json` exists (an unfinished run is only loaded when allowed)."""
    tokens_dir: Path | None = None
    dataset_dir: Path | None = None

    @property
    def max_len(self) -> int:
        """History length used in training (`data.max_len`), else the model's positions."""
        return int(self.config.get("data", {}).get("max_len") or self.model.cfg.max_len)

    @property
    def precision(self) -> str:
        """`train.precision` of the run ("auto" when unknown): evaluation encodes users the same way."""
        return str(self.config.get("train", {}).get("precision", "auto"))

    @property
    def eval_batch_size(self) -> int:
        return int(self.config.get("eval", {}).get("batch_size", 1024))


# -- hashes -----------------------------------------------------------------------------------


def tokens_hash(tokens_dir: str | Path | None) -> str | None:
    """SHA-256 of the token table's manifest + tokenizer (identifies the vocabulary; legacy field)."""
    if tokens_dir is None:
        return None
    h = hashlib.sha256()
    for name in ("token_table.json", "tokenizer.json"):
        path = Path(tokens_dir) / name
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def tokens_sha256(tokens_dir: str | Path | None, cache: dict[str, Any] | None = None) -> str | None:
    """SHA-256 over every file of the token table that decides the item table (`TOKEN_FILES`)."""
    if tokens_dir is None:
        return None
    h = hashlib.sha256()
    for name in TOKEN_FILES:
        path = Path(tokens_dir) / name
        if path.is_file():
            h.update(name.encode())
            h.update(file_sha256(path, cache).encode())
    return h.hexdigest()


def dataset_hash(dataset_dir: str | Path) -> str | None:
    """SHA-256 of the dataset card (which itself hashes the sources and the content)."""
    card = Path(dataset_dir) / "card.json"
    return hashlib.sha256(card.read_bytes()).hexdigest() if card.is_file() else None


def file_sha256(path: Path, cache: dict[str, Any] | None = None) -> str:
    """SHA-256 of `path`, reused from `cache` (or this process) while its size and mtime are unchanged."""
    st = path.stat()
    key = str(path.resolve())
    memo_key = (key, st.st_size, st.st_mtime_ns)
    hit = (cache or {}).get(key)
    if hit and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
        return str(hit["sha256"])
    digest = _MEMO.get(memo_key) or sha256_file(path)
    _MEMO[memo_key] = digest
    if cache is not None:
        cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    return digest


def _read_cache(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / CACHE_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(run_dir: Path, cache: dict[str, Any]) -> None:
    """Best effort: a read-only run dir only loses the fast path."""
    with contextlib.suppress(OSError):
        write_json(run_dir / CACHE_NAME, cache)


# -- save -------------------------------------------------------------------------------------


def _tokenizer_sha256(tokens_dir: str | Path | None) -> str | None:
    path = Path(tokens_dir) / "tokenizer.json" if tokens_dir else None
    return file_sha256(path) if path is not None and path.is_file() else None


def model_meta(model_cfg: Any, tokens_dir: str | Path | None, dataset_dir: str | Path, step: int) -> dict:
    """The `meta.json` fields known before weights exist: config, paths and their hashes."""
    return {
        "model_config": dataclasses.asdict(model_cfg),
        "tokens_dir": str(Path(tokens_dir).resolve()) if tokens_dir else None,
        "tokenizer_hash": tokens_hash(tokens_dir),
        "tokens_sha256": tokens_sha256(tokens_dir),
        "tokenizer_sha256": _tokenizer_sha256(tokens_dir),
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "dataset_hash": dataset_hash(dataset_dir),
        "step": step,
    }


def save_weights(
    run_dir: Path, model: torch.nn.Module | dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Write `model.safetensors` then `meta.json` (with the weights' SHA-256), each atomically.
    `model` may be a state dict (a snapshot taken earlier)."""
    from safetensors.torch import save

    weights = model.state_dict() if isinstance(model, torch.nn.Module) else model
    state = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    blob = save(state, metadata={"format_version": str(FORMAT_VERSION)})
    with atomic_write(Path(run_dir) / "model.safetensors", mode="wb") as fh:
        fh.write(blob)
    digest = hashlib.sha256(blob).hexdigest()
    write_json(Path(run_dir) / "meta.json", {"format_version": FORMAT_VERSION, **meta,
                                             "model_sha256": digest, "model_bytes": len(blob)})


# -- read and verify --------------------------------------------------------------------------


def read_json_file(path: Path, what: str) -> Any:
    """JSON content of `path`, or a one-line `UserError` saying what is wrong with it."""
    if not path.is_file():
        raise UserError(f"{path}: not found; {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); the file is damaged") from None


def read_meta(run_dir: Path) -> dict[str, Any]:
    """`meta.json`, checked: a JSON object of this format version with a `model_config` object."""
    path = run_dir / "meta.json"
    meta = read_json_file(path, f"is {run_dir} a training run dir?")
    if not isinstance(meta, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: format_version {meta.get('format_version')} != {FORMAT_VERSION}")
    if not isinstance(meta.get("model_config"), dict):
        raise UserError(f"{path}: field model_config is missing or not an object")
    return meta


def check_finished(run_dir: Path, allow_unfinished: bool) -> bool:
    """True when the run's completion file exists and is a JSON object (`final.json` of training,
    `transfer.json` of a fine-tuning output); an unfinished run is refused unless allowed."""
    path = next((run_dir / n for n in FINISHED_MARKERS if (run_dir / n).is_file()), run_dir / "final.json")
    if not path.is_file():
        if allow_unfinished:
            return False
        raise UserError(f"{run_dir}: run is unfinished (no final.json; stopped or killed); "
                        "resume it, or pass --allow-unfinished to use its last best weights")
    final = read_json_file(path, "")
    if not isinstance(final, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(final).__name__}")
    return True


def _check_hash(path: Path, want: str | None, got: str | None, what: str) -> None:
    if want and got != want:
        raise UserError(f"{path}: {what} does not match the SHA-256 recorded in meta.json "
                        "(changed or damaged since training); refusing to use it")


def verify_model_file(run_dir: Path, meta: dict[str, Any], cache: dict[str, Any]) -> Path:
    path = run_dir / "model.safetensors"
    if not path.is_file():
        raise UserError(f"{path}: not found; the run has no saved weights")
    want = meta.get("model_sha256")
    if want:
        _check_hash(path, want, file_sha256(path, cache), "the weights file")
    return path


def verify_tokens(
    meta: dict[str, Any], tokens_dir: Path, cache: dict[str, Any], new_catalog: bool = False
) -> None:
    """The token table must be the one the run was trained with (`tokens_sha256`, else the legacy hash).
    With `new_catalog` (serving or ranking another catalog with the run's tokenizer) only the
    tokenizer must match: the item rows are the new catalog's, the token ids must mean the same."""
    if new_catalog:
        want = meta.get("tokenizer_sha256")
        if not want:
            raise UserError(
                f"{tokens_dir}: this run records no tokenizer_sha256 (older format), so another catalog "
                "cannot be checked against its tokenizer; serve its own token table"
            )
        _check_hash(tokens_dir, want, file_sha256(tokens_dir / "tokenizer.json", cache), "the tokenizer")
        return
    if meta.get("tokens_sha256"):
        _check_hash(tokens_dir, meta["tokens_sha256"], tokens_sha256(tokens_dir, cache), "the token table")
    elif meta.get("tokenizer_hash"):
        _check_hash(tokens_dir, meta["tokenizer_hash"], tokens_hash(tokens_dir), "the token table")


def verify_dataset(meta: dict[str, Any], dataset_dir: str | Path) -> None:
    """The dataset (its card) must be the one recorded in `meta.json`, when a hash was recorded."""
    want = meta.get("dataset_hash")
    if not want:
        return
    card = Path(dataset_dir) / "card.json"
    if not card.is_file():
        raise UserError(f"{card}: not found; cannot check the dataset recorded in meta.json")
    _check_hash(card, want, dataset_hash(dataset_dir), "the dataset card")


def verify_run_files(run_dir: str | Path, tokens_dir: str | Path | None = None) -> dict[str, Any] | None:
    """Check what a resume reuses: meta.json, the weights' and token table's hashes.

    Returns the meta (None when the run has saved no weights yet)."""
    run_dir = Path(run_dir)
    if not (run_dir / "meta.json").is_file() and not (run_dir / "model.safetensors").is_file():
        return None
    meta = read_meta(run_dir)
    cache = _read_cache(run_dir)
    verify_model_file(run_dir, meta, cache)
    tdir = tokens_dir or meta.get("tokens_dir")
    if tdir and Path(tdir).is_dir():
        verify_tokens(meta, Path(tdir), cache)
    _write_cache(run_dir, cache)
    return meta


def _model_config(meta: dict[str, Any], meta_path: Path) -> Any:
    try:
        return from_dict(ModelConfig, meta["model_config"], prefix="meta.model_config")
    except (UserError, ValueError, TypeError) as exc:
        raise UserError(f"{meta_path}: invalid model_config ({exc})") from None


def _load_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for truncated/garbage files
        raise UserError(f"{path}: not a readable safetensors file ({type(exc).__name__}); "
                        "the file is damaged") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise UserError(f"{path}: weights do not fit meta.json's model_config ({first})") from None


def _set_tokens(
    model: Any, meta: dict[str, Any], tdir: Path, meta_path: Path, cache: dict[str, Any], new_catalog: bool
) -> None:
    if not tdir.is_dir():
        raise UserError(f"{meta_path}: token table {tdir} not found; pass tokens_dir")
    verify_tokens(meta, tdir, cache, new_catalog)
    try:
        tables = load_item_tokens(tdir).torch_tables()
        model.set_item_table(tables)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise UserError(f"{tdir}: token table unusable with this model ({msg})") from None


def _same_item_table(meta: dict[str, Any], tdir: Path, cache: dict[str, Any]) -> bool:
    """The token table is the run's own (same hash), so item ids still name the same items."""
    want = meta.get("tokens_sha256")
    return bool(want) and tokens_sha256(tdir, cache) == want


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None


def load_run(
    run_dir: str | Path,
    device: str | torch.device = "cpu",
    tokens_dir: str | Path | None = None,
    allow_unfinished: bool = False,
    new_catalog: bool = False,
) -> LoadedRun:
    """Rebuild the model of a run dir from `meta.json`, check and load its weights and item table.

    `tokens_dir` overrides the token table recorded in `meta.json` (e.g. a moved run dir); it must
    still hash to what was recorded — or, with `new_catalog`, be another catalog's table built with
    the run's own tokenizer (`text train --tokenizer`), whose hash is then what is checked. A hybrid
    run over another catalog than its own gets a zero ID table: its items are scored by text alone.
    Raises `UserError` (one line) for an unfinished run (unless
    `allow_unfinished`), a hash mismatch, or any malformed file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run dir not found")
    finished = check_finished(run_dir, allow_unfinished)
    meta = read_meta(run_dir)
    meta_path = run_dir / "meta.json"
    mcfg = _model_config(meta, meta_path)
    cache = _read_cache(run_dir)
    weights = verify_model_file(run_dir, meta, cache)
    model = SequentialRecommender(mcfg)
    _load_weights(model, weights)
    model.to(device).eval()
    tdir = tokens_dir or meta.get("tokens_dir")
    if mcfg.has_text:
        if not tdir:
            raise UserError(f"{meta_path}: no token table recorded; pass tokens_dir")
        _set_tokens(model, meta, Path(tdir), meta_path, cache, new_catalog)
        if mcfg.has_ids and new_catalog and not _same_item_table(meta, Path(tdir), cache):
            model.reset_item_ids(model.n_items)  # its trained ID rows name the old catalog's items
    _write_cache(run_dir, cache)
    config = _read_config(run_dir)
    dataset = meta.get("dataset_dir") or config.get("data", {}).get("dataset")
    return LoadedRun(model, meta, config, run_dir, finished, Path(tdir) if tdir else None,
                     Path(dataset) if dataset else None)

