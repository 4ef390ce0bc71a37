"""The quick-start notebook must run top to bottom: it is the user's first contact with the Python API.

Executed with nbclient in a fresh kernel (the same interpreter as the tests, so it imports this
checkout). Skips cleanly where the `docs` extra (nbclient, nbformat, ipykernel) is not installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel runs this interpreter with this checkout's sources first on the path, and its
    # temporary files (the notebook writes into tempfile.mkdtemp()) go under tmp_path.
    src = str(NOTEBOOK.parents[2] / "src")
    env = {
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p),
        "TMPDIR": str(tmp_path),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name=NATIVE_KERNEL_NAME, resources={"metadata": {"path": str(tmp_path)}}
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "NDCG@10" in text and "most_popular" in text  # the evaluation cell printed its table
    assert "Scored(" in text  # the recommend cell answered
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot was drawn
