"""Warmup-stable-decay: a cooldown branch off the stable phase is the shorter run, step for step."""

from __future__ import annotations

import pytest

from scalerec.train.schedule import lr_factor, wsd


def test_wsd_shape():
    f = [wsd(s, 100, 10, 20, 0.0) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(v == 1.0 for v in f[10:80])
    assert all(a > b for a, b in zip(f[80:], f[81:], strict=False))  # strictly decreasing cooldown
    assert f[99] == pytest.approx(0.0)
    assert wsd(99, 100, 10, 20, 0.1) == pytest.approx(0.1)
    assert wsd(50, 100, 0, 0) == 1.0  # no decay: constant after warmup


def test_branch_matches_trunk_until_it_decays():
    trunk = [lr_factor("wsd", s, 1000, 20, 0.0, 200) for s in range(1000)]
    branch = [lr_factor("wsd", s, 250, 20, 0.0, 50) for s in range(250)]
    assert branch[:200] == trunk[:200]
    assert branch[200] < trunk[200]


def test_default_decay_is_a_fifth():
    assert lr_factor("wsd", 79, 100, 0, 0.0) == 1.0
    assert lr_factor("wsd", 80, 100, 0, 0.0) < 1.0
