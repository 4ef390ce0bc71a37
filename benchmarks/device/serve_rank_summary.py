"""The short summary of `serve_rank_call.sh`: the figures of its logs, one line each.

Reads what the call wrote to its log folder (train_final.json, ranking.log, serve.log, world.log)
and prints the run's training result, the ranking benchmark's time split and exactness, and the
serving bar; a step that failed or never ran is named as missing, not skipped silently.

    python benchmarks/device/serve_rank_summary.py $OUT      # also writes $OUT/summary.txt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def json_lines(path: Path) -> list[dict]:
    """The JSON objects among a log's lines (other lines are progress text)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _train(out: Path) -> str:
    path = out / "train_final.json"
    if not path.is_file():
        return "train: MISSING (no final.json: see train.log)"
    f = json.loads(path.read_text())
    ndcg = f.get("test", {}).get("ndcg@10", float("nan"))
    return (f"train: {f.get('steps')} steps, {f.get('epochs', 0):.1f} epochs, "
            f"{f.get('wall_time_s', 0):.0f} s on {f.get('device')}, "
            f"stopped_by_time={f.get('stopped_by_time', False)}, best_step {f.get('best_step')}, "
            f"test ndcg@10 {ndcg:.4f}")


def _world(out: Path) -> str:
    rows = [r["serve_world"] for r in json_lines(out / "world.log") if "serve_world" in r]
    if not rows:
        return "catalog: MISSING (see world.log)"
    r = rows[-1]
    return (f"catalog: {r['items']} items rebuilt without polars: world {r['world_s']} s, write "
            f"{r['write_s']} s, tokenize {r['tokenize_s']} s")


def _ranking(out: Path) -> str:
    rows = {r.get("event"): r for r in json_lines(out / "ranking.log")}
    if "scalerec_model" not in rows:
        return "ranking: MISSING (see ranking.log)"
    t, ex, setup = rows["scalerec_model"], rows.get("exact", {}), rows.get("setup", {})
    return (f"ranking: {setup.get('users')} users x {setup.get('items')} items on {setup.get('device')}: "
            f"total {t['total_s']} s = user encode {t['user_encode_s']} + item encode {t['item_encode_s']} "
            f"+ rank {t['rank_s']}; exact agreement {ex.get('rank_agreement_vs_fp64')} on "
            f"{ex.get('checked_users')} users; ndcg@10 {t.get('ndcg@10')}; "
            f"bar <= 30 s: {rows.get('bar', {}).get('pass')}")


def _serve(out: Path, name: str = "serve") -> str:
    rows = json_lines(out / f"{name}.log")
    phase = next((r for r in rows if "phase" in r), None)
    bar = next((r for r in rows if "bar" in r), None)
    if phase is None or bar is None:
        return f"{name}: MISSING (see {name}.log)"
    idx, server = phase.get("index", {}), phase.get("server", {})
    return (f"{name}: max rate in bar {phase.get('max_rps_in_bar')} req/s (first failing "
            f"{phase.get('first_failing_rps')}): p50 {phase.get('p50_ms')} ms, p99 {phase.get('p99_ms')} ms, "
            f"errors {phase.get('errors')}; request recall@10 {server.get('request_recall@10')}; index "
            f"{idx.get('kind')} nprobe {idx.get('nprobe')}/{idx.get('nlist')}; server setup "
            f"{server.get('setup_s')} s; bar {json.dumps(bar['bar'])}; load avg {bar.get('loadavg_1m_end')}; "
            f"commit {bar.get('commit')}{_split(phase.get('split') or {})}")


def _split(split: dict) -> str:
    """The one-request-at-a-time split of the serving run (p50 ms per stage), or nothing."""
    stages = {k: v["p50"] for k, v in split.items() if isinstance(v, dict) and "p50" in v}
    return "; split p50 ms " + json.dumps(stages) if stages else ""


def _flags(log: Path) -> str:
    """The extra flags of the second serving run (its log's first line holds them)."""
    first = log.read_text(errors="replace").splitlines()[:1]
    return first[0].split("EXTRA:", 1)[-1].strip() if first and "EXTRA:" in first[0] else ""


def main() -> None:
    out = Path(sys.argv[1])
    lines = [_world(out), _train(out), _ranking(out), _serve(out)]
    if (out / "serve2.log").is_file():  # the optional second serving configuration ($SERVE2)
        lines.append(_serve(out, "serve2") + f" [{_flags(out / 'serve2.log')}]")
    text = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
