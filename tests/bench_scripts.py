"""Scripts outside the package (benchmarks/, docs/hooks/) imported by path, for the tests of their pure
parts: they are not importable by name, and every such test needs the same three importlib steps."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relpath: str, name: str | None = None, register: bool = False) -> ModuleType:
    """A fresh module from `ROOT/relpath` (named `name`, the file's stem by default); `register` puts it
    in sys.modules first, which dataclasses and pickling need to find the module by name."""
    path = ROOT / relpath
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
