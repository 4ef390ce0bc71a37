"""The dependency direction of STYLE.md, enforced on the real import graph of `src/scalerec`.

cli → commands → stages → model / text / config; `data` and `text` import nothing in the project,
`model` nothing but itself; nothing imports upward and no two modules import each other. Every
import counts, including function-local and `TYPE_CHECKING` ones: a lazy import is still a
dependency, it only moves the failure to run time.

Edges that break the rule today, and that other work is removing, are listed once in
`KNOWN_EDGES` / `KNOWN_CYCLES`; when one disappears, the stale-exception test says which line to
delete.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "scalerec"

# Leaf helpers any layer may use: they import nothing of the project ("scalerec": the version).
FOUNDATION = {"errors", "io", "scalerec"}

# Units (top-level modules or subpackages of scalerec) and what each may import directly; a unit
# may also import whatever those may import (the order is a layering).
STAGES = {"data", "text", "model", "config", "config_docs", "device", "runlog", "memory", "rundir", "runs",
          "eval", "train", "scaling", "transfer", "serve"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "io": set(),
    "config": set(),
    "config_docs": set(),
    "device": set(),
    "runlog": set(),
    "data": set(),
    "text": set(),
    "model": set(),
    "memory": {"model"},
    "rundir": {"model", "text", "config"},  # the neutral run-dir module (one of these two names)
    "runs": {"model", "text", "config"},
    "eval": {"model", "data", "rundir", "runs", "config", "device", "memory"},
    "train": {"model", "data", "text", "eval", "rundir", "runs", "config", "device", "runlog", "memory"},
    "scaling": {"train", "eval"},
    "transfer": {"train", "eval"},
    "serve": {"model", "text", "rundir", "runs", "eval", "config", "device"},
    "demo": set(STAGES),
    "commands": STAGES | {"demo"},
    "cli": {"commands"},
    "__main__": {"cli"},
    "scalerec": set(),  # the package root holds only the version
}

# Known violations, each with who is removing it. Delete a line once its edge is gone.
KNOWN_EDGES: dict[tuple[str, str], str] = {
    ("data", "config"): "data helper: data/etl.py uses config.to_dict for the card",
}
KNOWN_CYCLES: dict[frozenset[str], str] = {
    frozenset({"scaling.estimate", "scaling.sweep"}): "sweep helper",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → project modules it imports (names relative to `scalerec`, "" for the root)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t if t.removeprefix("scalerec.") in modules else node.module for t in targets]
            elif isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{path}: relative import; use `from scalerec....`")
            for target in targets:
                if target == "scalerec" or target.startswith("scalerec."):
                    graph[name].add(target.removeprefix("scalerec").removeprefix("."))
    return graph


def unit(module: str) -> str:
    return module.split(".")[0] if module else "scalerec"


def _closure(name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(ALLOWED.get(name, ()))
    while todo:
        u = todo.pop()
        if u not in seen:
            seen.add(u)
            todo += ALLOWED.get(u, ())
    return seen | FOUNDATION


def unit_edges() -> dict[tuple[str, str], list[str]]:
    """(unit, unit it imports) → the module-level imports that make the edge."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for src, targets in import_graph().items():
        for dst in targets:
            if unit(src) != unit(dst):
                edges[(unit(src), unit(dst))].append(f"{src} → {dst}")
    return edges


def cycles() -> list[frozenset[str]]:
    """Strongly connected components (> 1 module) of the module graph (Tarjan)."""
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(frozenset(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_every_unit_has_a_place_in_the_order() -> None:
    units = {unit(m) for m in _modules()}
    assert units - set(ALLOWED) == set(), "add the new module to ALLOWED (and STYLE.md) in its layer"


def test_no_upward_imports() -> None:
    bad = {edge: where for edge, where in unit_edges().items()
           if edge[1] not in _closure(edge[0]) and edge not in KNOWN_EDGES}
    assert not bad, "imports against STYLE.md's dependency direction:\n" + "\n".join(
        f"{a} → {b}: {', '.join(sorted(w)[:3])}" for (a, b), w in sorted(bad.items()))


def test_no_import_cycles() -> None:
    bad = [c for c in cycles() if c not in KNOWN_CYCLES]
    assert not bad, f"modules importing each other: {[sorted(c) for c in bad]}"


def test_known_exceptions_are_still_needed() -> None:
    edges, found = unit_edges(), set(cycles())
    stale = [f"KNOWN_EDGES {e}" for e in KNOWN_EDGES if e not in edges]
    stale += [f"KNOWN_CYCLES {sorted(c)}" for c in KNOWN_CYCLES if c not in found]
    assert not stale, f"fixed — delete these lines from tests/test_import_graph.py: {sorted(stale)}"


def test_the_checker_sees_violations() -> None:
    """The rule itself can fail: an upward edge is outside the closure, a legal one inside."""
    assert "train" not in _closure("eval") and "serve" not in _closure("train")
    assert "model" in _closure("scaling") and "data" in _closure("serve")
    assert "data" not in _closure("text") and "config" not in _closure("model")


@pytest.mark.parametrize(
    "module", ["scalerec.scaling.plots", "scalerec.scaling.laws", "scalerec.scaling.report",
               "scalerec.scaling.fits", "scalerec.config", "scalerec.data.build.config", "scalerec.text"],
)
def test_light_modules_do_not_import_torch(module: str) -> None:
    """STYLE.md: the fitting side of scaling never imports torch; nor do config, data, text."""
    code = f"import sys, {module}; sys.exit('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{module} imports torch {result.stderr[-500:]}"
