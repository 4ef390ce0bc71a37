"""Every command that takes a config resolves it the same way (`scalerec.config.resolve`):
defaults < preset < TOML file < `--set` < explicit flags.

Each test runs the real command through the CLI with the stage's library function replaced by a
probe that records the resolved config, so what is checked is the command's own wiring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scalerec.cli import app

runner = CliRunner()


@dataclass
class Inner:
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    path: str = ""


class _Stop(Exception):
    """Raised by a probe once it has the config, so nothing runs."""


def _probe(seen: dict[str, Any], arg: int = 0):
    def capture(*args: Any, **kwargs: Any) -> Any:
        seen["cfg"] = args[arg]
        raise _Stop

    return capture


def _run(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert isinstance(result.exception, _Stop), result.output + repr(result.exception)


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


def test_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scalerec.train

    seen: dict[str, Any] = {}
    monkeypatch.setattr(scalerec.train, "train", _probe(seen))
    toml = _toml(tmp_path, 'model_size = "s"\n[data]\ndataset = "from_toml"\n'
                 "[train]\nlr = 0.1\nbatch_size = 7\nnegatives = 9\n[model]\nn_layers = 5\n")
    _run(["train", "--config", toml, "--set", "train.lr=0.2", "--set", "data.dataset=from_set",
          "--set", "train.batch_size=8", "--data", "from_flag"])
    cfg = seen["cfg"]
    assert cfg.data.dataset == "from_flag"  # flag > --set > TOML
    assert cfg.train.lr == 0.2  # --set > TOML
    assert cfg.train.batch_size == 8
    assert cfg.train.negatives == 9  # TOML > default
    assert cfg.model.n_layers == 5  # TOML > preset
    assert cfg.model_size == "s" and cfg.model.d_model == 128  # the TOML's size picked the preset
    assert cfg.train.log_every == 0  # default kept (0 = auto, resolved when the run starts)
    _run(["train", "--config", toml, "--size", "tiny", "--set", "model_size=m"])
    assert seen["cfg"].model_size == "tiny"  # --size (a flag) > --set > TOML


def test_text_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scalerec.text

    seen: dict[str, Any] = {}
    monkeypatch.setattr(scalerec.text, "build_token_table", lambda *a, **kw: seen.update(kw) or _stop())
    toml = _toml(tmp_path, "vocab_size = 100\nmin_frequency = 3\n")
    base = ["text", "train", "--data", "d", "--out", str(tmp_path / "t"), "--config", toml]
    _run([*base, "--set", "vocab_size=200", "--vocab-size", "300"])
    assert seen["vocab_size"] == 300 and seen["min_frequency"] == 3
    _run([*base, "--set", "vocab_size=200"])
    assert seen["vocab_size"] == 200
    _run(base)
    assert seen["vocab_size"] == 100


def _stop() -> None:
    raise _Stop


def test_data_prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scalerec.data.build.prepare

    seen: dict[str, Any] = {}
    monkeypatch.setattr(scalerec.data.build.prepare, "prepare", _probe(seen))
    toml = _toml(tmp_path, 'source = "movielens"\nk_core = 3\nout = "from_toml"\nmin_user_interactions = 2\n')
    _run(["data", "prepare", "--config", toml, "--set", "k_core=4", "--set", "out=from_set",
          "--set", "source=amazon2014", "--source", "amazon2023"])
    cfg = seen["cfg"]
    assert cfg.source == "amazon2023"  # flag > --set
    assert cfg.out == Path("from_set")  # --set > TOML
    assert cfg.k_core == 4 and cfg.min_user_interactions == 2 and cfg.dedupe is True
    _run(["data", "prepare", "--config", toml, "--set", "out=from_set", "--out", "from_flag", "--strict"])
    assert seen["cfg"].out == Path("from_flag") and seen["cfg"].mode == "strict"


def test_finetune(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scalerec.transfer.finetune

    seen: dict[str, Any] = {}
    monkeypatch.setattr(scalerec.transfer.finetune, "finetune", _probe(seen))
    toml = _toml(tmp_path, 'strategy = "ewc"\nepochs = 3\ndevice = "cuda"\n')
    _run(["finetune", "--from", "p", "--data", "d", "--config", toml, "--set", "strategy=scratch",
          "--set", "epochs=4", "--set", 'device="cuda:1"', "--device", "cpu"])
    cfg = seen["cfg"]
    assert cfg.device == "cpu"  # flag > --set
    assert cfg.strategy == "scratch" and cfg.epochs == 4  # --set > TOML
    assert (cfg.pretrained, cfg.data) == ("p", "d")
    _run(["finetune", "--from", "p", "--data", "d", "--config", toml, "--set", "strategy=scratch",
          "--strategy", "full"])
    assert seen["cfg"].strategy == "full" and seen["cfg"].device == "cuda"


def test_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scalerec.scaling.sweep

    seen: dict[str, Any] = {}
    monkeypatch.setattr(scalerec.scaling.sweep, "run_sweep", _probe(seen))
    toml = _toml(tmp_path, 'dataset = "d"\nsizes = ["tiny"]\nepochs = 2.0\nseeds = [0, 1]\n')
    _run(["sweep", toml, "--out", str(tmp_path / "o"), "--set", "epochs=3"])
    spec = seen["cfg"]
    assert spec.epochs == 3.0 and spec.seeds == [0, 1] and spec.recipe == "default"


def test_recommend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scalerec.serve.run_encoder

    seen: dict[str, Any] = {}
    monkeypatch.setattr(scalerec.serve.run_encoder, "load_recommender", _probe(seen, arg=1))
    _run(["recommend", "r", "--history", "a"])
    assert seen["cfg"].index.kind == "exact"  # the command's preset > default ("auto")
    toml = _toml(tmp_path, '[index]\nkind = "ivf"\n')
    _run(["recommend", "r", "--history", "a", "--config", toml])
    assert seen["cfg"].index.kind == "ivf"  # TOML > preset
    _run(["recommend", "r", "--history", "a", "--config", toml, "--set", "index.kind=hnsw"])
    assert seen["cfg"].index.kind == "hnsw"  # --set > TOML


def test_resolve_layers_in_order(tmp_path: Path) -> None:
    """The function itself: each layer replaces only the keys it sets; None flags are 'not given'."""
    from scalerec.config import resolve

    toml = _toml(tmp_path, "[inner]\nb = 2\nc = 2\nd = 2\n")
    cfg = resolve(Outer, preset={"inner": {"a": 1, "b": 1}}, toml=toml, overrides=["inner.c=3", "inner.d=3"],
                  flags={"inner.d": 4, "path": Path("x/y"), "inner.a": None})
    assert cfg == Outer(Inner(a=1, b=2, c=3, d=4), path="x/y")
    picked = resolve(Outer, preset=lambda user: {"inner": {"a": user["inner"]["d"] * 10}},
                     flags={"inner.d": 5})
    assert picked.inner.a == 50
