"""One `__init__.py` style: a package either only documents itself, or documents and lists lazy
exports (`_EXPORTS` + `__getattr__`, typed through `TYPE_CHECKING` imports). An export is the real
object — same signature, same docstring — never a `*args, **kwargs` wrapper, and importing a
package (or its plain-number submodules) does not import torch."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "scalerec"
PACKAGES = sorted(p.parent.name for p in SRC.glob("*/__init__.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_init_is_docstring_or_lazy_exports(package: str) -> None:
    tree = ast.parse((SRC / package / "__init__.py").read_text())
    body = tree.body
    assert ast.get_docstring(tree), f"{package}/__init__.py says what the package is for"
    functions = {n.name for n in body if isinstance(n, ast.FunctionDef)}
    assert functions <= {"__getattr__", "__dir__"}, f"no wrapper functions in {package}/__init__.py"
    if len(body) > 1:
        assigns = [n for n in body if isinstance(n, ast.Assign)]
        assigned = {t.id for n in assigns for t in n.targets if isinstance(t, ast.Name)}
        assert {"_EXPORTS", "__all__"} <= assigned and "__getattr__" in functions


@pytest.mark.parametrize("package", PACKAGES)
def test_exports_are_the_real_objects(package: str) -> None:
    module = importlib.import_module(f"scalerec.{package}")
    exports = getattr(module, "_EXPORTS", {})
    assert sorted(getattr(module, "__all__", [])) == sorted(exports)
    for name, where in exports.items():
        real = getattr(importlib.import_module(where), name)
        assert getattr(module, name) is real
        if inspect.isfunction(real):
            params = inspect.signature(real).parameters.values()
            assert not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params), name
    with pytest.raises(AttributeError):
        module.no_such_export  # noqa: B018


def test_packages_import_without_torch() -> None:
    names = [f"scalerec.{p}" for p in PACKAGES] + ["scalerec.model.config", "scalerec.model.sizes",
                                                  "scalerec.model.flops", "scalerec.train.config"]
    code = f"import sys\nfor n in {names!r}: __import__(n)\nsys.exit('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-800:] or "torch was imported"
