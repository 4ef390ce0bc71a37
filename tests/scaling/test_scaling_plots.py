"""Figures: readable log axes (no overlapping tick labels), and plots.py never imports torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def _labels_overlap(fig, axis) -> bool:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
    boxes.sort(key=lambda b: b.x0)
    return any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:], strict=False))


@pytest.mark.parametrize("lo, hi", [(1.6e5, 1.3e6), (3e11, 3e14), (2e4, 3e7), (9e12, 1.1e13)])
def test_log_axis_labels_do_not_overlap(lo, hi):
    from scalerec.scaling.plots import _plt, log_axis

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.3, 3.0))  # one panel of the three-panel figure
    ax.plot(np.geomspace(lo, hi, 10), np.arange(10))
    log_axis(ax, "x")
    assert not _labels_overlap(fig, ax.xaxis), [t.get_text() for t in ax.get_xticklabels()]
    assert sum(bool(t.get_text()) for t in ax.get_xticklabels()) >= 1
    plt.close(fig)


def test_default_matplotlib_labels_overlap_on_a_short_range():
    """The check above can fail: matplotlib's default labels collide on under a decade."""
    from scalerec.scaling.plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.3, 3.0))
    ax.plot(np.geomspace(1.6e5, 1.3e6, 10), np.arange(10))
    ax.set_xscale("log")
    ax.tick_params(axis="x", which="minor", labelsize=10)
    from matplotlib.ticker import LogFormatterSciNotation

    ax.xaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = sorted(
        (t.get_window_extent(renderer) for t in ax.xaxis.get_ticklabels(minor=True) if t.get_text()),
        key=lambda b: b.x0,
    )
    assert any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:], strict=False))
    plt.close(fig)


def test_plots_module_never_imports_torch():
    code = "import sys, scalerec.scaling.plots, scalerec.scaling.report; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
