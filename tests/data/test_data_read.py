"""`UserSequences.take`: the one row-selection helper behind splits, eval subsets and fine-tuning."""

from __future__ import annotations

import numpy as np

from scalerec.data.read.sequences import UserSequences
from scalerec.data.read.splits import leave_one_out

SEQS = [[1, 2, 3, 4, 5], [6, 7], [8], [], [2, 3, 4]]


def _lists(seqs: UserSequences) -> list[list[int]]:
    return [seqs.row(i).tolist() for i in range(seqs.n_users)]


def test_take_rows_in_given_order_and_prefixes():
    seqs = UserSequences.from_lists(SEQS, 9)
    assert _lists(seqs.take(np.array([4, 0, 3]))) == [[2, 3, 4], [1, 2, 3, 4, 5], []]
    cut = seqs.take(np.arange(5), np.array([2, 5, -1, 3, 0]))  # clipped to [0, row length]
    assert _lists(cut) == [[1, 2], [6, 7], [], [], []]
    assert cut.n_items == 9 and cut.offsets.dtype == np.int64


def test_leave_one_out_matches_per_user_reference():
    rng = np.random.default_rng(0)
    lists = [rng.integers(1, 50, size=int(n)).tolist() for n in rng.integers(0, 12, size=200)]
    split = leave_one_out(UserSequences.from_lists(lists, 50))
    train = [s[:-2] if len(s) >= 4 else [] for s in lists]
    assert _lists(split.train) == train
    v = [u for u, s in enumerate(lists) if len(s) >= 3]
    assert _lists(split.valid[0]) == [lists[u][:-2] for u in v]
    assert split.valid[1].tolist() == [lists[u][-2] for u in v]
    t = [u for u, s in enumerate(lists) if len(s) >= 2]
    assert _lists(split.test[0]) == [lists[u][:-1] for u in t]
    assert split.test[1].tolist() == [lists[u][-1] for u in t]
    assert split.test_users.tolist() == [u + 1 for u in t]


def test_read_room_needs_no_polars():
    """`read/` is numpy/pyarrow only: loading and splitting sequences never imports Polars."""
    import subprocess
    import sys

    code = (
        "import sys; import scalerec.data.read.splits, scalerec.data.read.sequences; "
        "from scalerec.data import UserSequences; print('polars' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_import_cycles_in_data():
    """No two modules of `scalerec.data` import each other, directly or through others (any import,
    function-local ones included)."""
    import ast
    from pathlib import Path

    import scalerec.data

    root = Path(scalerec.data.__file__).parent
    parts = {p: ("scalerec", "data", *p.relative_to(root).with_suffix("").parts) for p in root.rglob("*.py")}
    names = {".".join(n).removesuffix(".__init__"): p for p, n in parts.items()}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in names and t != name and not name.startswith(t + ".")}
        graph[name] = deps - {"scalerec.data"}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            cur = todo.pop()
            if cur == goal:
                return True
            if cur not in seen:
                seen.add(cur)
                todo.extend(graph.get(cur, ()))
        return False

    cycles = [n for n in graph if n != "scalerec.data" and reaches(n, n)]
    assert cycles == []
