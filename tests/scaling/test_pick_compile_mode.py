"""benchmarks/device/pick_compile_mode.py: the compile mode a sweep's calls train under, read off a probe."""

from __future__ import annotations

import json
from pathlib import Path

from bench_scripts import load_script

pick = load_script("benchmarks/device/pick_compile_mode.py")


def _row(size: str, mode: str, rate: float, losses=(3.0, 3.0, 3.0), **extra) -> dict:
    return {"size": size, "mode": mode, "targets_per_s_card": rate, "last_train_loss": list(losses), **extra}


def test_the_fastest_mode_over_all_sizes_wins_and_becomes_set_overrides(tmp_path: Path):
    rows = [_row("m", "eager", 100), _row("m", "default", 110), _row("m", "reduce-overhead", 105),
            _row("tiny", "eager", 100), _row("tiny", "default", 120), _row("tiny", "reduce-overhead", 300)]
    log = tmp_path / "probe.jsonl"
    log.write_text(json.dumps({"spec": "x"}) + "\n" + "\n".join(json.dumps(r) for r in rows) + "\nnoise\n")
    assert pick.pick(pick.read_rows(log)) == "reduce-overhead"     # (1/1.05 + 1/3) / 2 = 0.64 of eager's time
    assert pick.overrides("reduce-overhead") == (
        "base.train.compile=true base.train.compile_mode=reduce-overhead")
    assert pick.overrides("eager") == ""


def test_eager_stays_unless_a_mode_is_clearly_faster_on_every_size_and_trains_the_same():
    small_gain = [_row("m", "eager", 100), _row("m", "default", 105)]
    assert pick.pick(small_gain) == "eager"                           # 5% faster: under the 10% bar
    diverged = [_row("m", "eager", 100), _row("m", "default", 200, losses=(3.0, 3.1, 3.0))]
    assert pick.pick(diverged) == "eager"                             # one copy trained 0.1 nats worse
    spread = [_row("m", "eager", 100), _row("m", "default", 200, losses=(2.96, 3.04, 3.0))]
    assert pick.pick(spread) == "default"   # copies 0.08 apart, mean on eager's: not bitwise, not different
    failed_on_one_size = [_row("m", "eager", 100), _row("m", "default", 200),
                          _row("tiny", "eager", 100),
                          {"size": "tiny", "mode": "default", "error": "exit codes [1]"}]
    assert pick.pick(failed_on_one_size) == "eager"
    no_eager = [_row("m", "default", 200)]
    assert pick.pick(no_eager) == "eager"


def test_the_cli_prints_the_overrides_alone_on_stdout(tmp_path: Path, capsys):
    log = tmp_path / "probe.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [_row("m", "eager", 100), _row("m", "default", 150)]))
    assert pick.main([str(log)]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "base.train.compile=true base.train.compile_mode=default"
    assert "chosen: default" in out.err


def test_cuda_graphs_must_beat_plain_compilation_not_only_eager():
    # world_v6's first probe on one H100 (2026-12-07): targets/s of the card, 3 copies per mode
    rates = {"m": {"eager": 745443, "reduce-overhead": 1436131, "default": 1320946},
             "tiny": {"eager": 1478584, "reduce-overhead": 2258446, "default": 2181895}}
    rows = [_row(size, mode, rate) for size, by_mode in rates.items() for mode, rate in by_mode.items()]
    costs = pick.relative_costs(rows, 0.03)
    assert round(costs["default"], 3) == 0.621 and round(costs["reduce-overhead"], 3) == 0.587
    assert pick.pick(rows) == "default"     # reduce-overhead is 5.5% faster than default: under the 10% bar
    boost = {"reduce-overhead": 1.5}
    faster = [_row(r["size"], r["mode"], r["targets_per_s_card"] * boost.get(r["mode"], 1)) for r in rows]
    assert pick.pick(faster) == "reduce-overhead"
