#!/usr/bin/env bash
# Issue 18 item 5 (real data, honestly): the pooled_v3 sweep (configs/sweeps/pooled_v3.toml: text and ID twins,
# 5 sizes, nested training-user fractions 0.01-0.33 of the pooled corpus, each run to its own early stop,
# 336 runs of <= 600 steps: 296 planned + 40 ID runs at LR x1/9 added 2026-12-06) on one GPU, in calls of
# < 10 minutes that resume across machines and sessions.
#
# Why this shape: a device machine is released 30 s after a call and can be taken back mid-session (2026-12-05:
# two of three chained calls lost), and ignored paths (gpu/, runs/) do not outlive a checkout. So every call
# returns the sweep's results.parquet (a row per finished run, upserted after each run), it is committed as
# docs/results/pooled_v3/results.parquet, and the next call adopts it (`scalerec sweep --adopt`): finished runs
# count as done wherever they ran. A dataset path outside the sweep dir is part of every run id, so DATA and TOK
# are the same relative paths on every machine, and their contents are rebuilt identically (dataset hash
# 3125e41d939eda6c; the BPE tokenizer trained twice gave the same files).
#
# Carry: gpu/pooled (7.5 MB: `POOLED=1 bash benchmarks/device/prepare_carry.sh`); the token table is built on
# the device (3 s). Then, after each call, on this machine:
#   cp <files_at>/results.parquet docs/results/pooled_v3/results.parquet   (and the call's sweep.log)
#
#   run(carry=["gpu/pooled"], command="OUT=$OUT LIM=540 bash benchmarks/device/pooled_v3_call.sh")
#   SPEC=configs/sweeps/pooled_v3b.toml: the follow-up sweep; its runs go to runs/pooled_v3b, and it adopts
#   docs/results/pooled_v3b/results.parquet once a call has returned one.
#   Give it the card alone at LIM=540 and chain a second call while the machine is warm: the runs left after
#   2026-12-07 are fresh 2,400-step runs (250-270 s each for tiny/xs, 470 s for text s+, at 14 workers alone),
#   and three calls that shared the card with 12 other runs at LIM<=420 finished none (docs/results/pooled_v3b/).
#   That shape, used on 2026-12-07 (calls 8 and 9), finished 20 and 22 runs per 540-s call.
#   Call 13 (2026-12-07, one H200, PAR=8) ran the 8 held-out text m runs in 339 s; call 14 (one H100, PAR=8) the 8
#   held-out ID m runs in 244 s, call 15 (PAR=4) the ID m's x1/4 in 193 s: the spec is complete (164 runs).
#   DRY=1: the calibrated dry run only (times a few short runs per size on this GPU; sweep_dry_run.log)
# CPU smoke of the mechanics (two "machines", the second adopting the first's table), as checked on 2026-12-05:
#   EXTRA_SETS="--set encoders=['text'] --set sizes=['tiny'] --set train_fractions=[0.01] --set seeds=[0]
#     --set extra_seeds=[] --set max_steps=4 --set lr_search=[1.0] --set lr_search_per_encoder={text=[1.0]}
#     --set device=cpu" PAR=1 W=/tmp/a/sweep ..., then the same with W=/tmp/b/sweep ADOPT=<first OUT>/results.parquet
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/pooled_v3_out}; mkdir -p "$OUT"
LIM=${LIM:-540}
T0=$(date +%s)
PY=${PY:-python}
DATA=${DATA:-gpu/pooled}          # relative: a path outside the sweep dir is part of every run id
TOK=${TOK:-runs/pooled_tokens}
PAR=${PAR:-14}
SPEC=${SPEC:-configs/sweeps/pooled_v3.toml}   # or configs/sweeps/pooled_v3b.toml (the follow-up)
NAME=$(basename "$SPEC" .toml)
W=${W:-runs/$NAME}
ADOPT=${ADOPT:-docs/results/$NAME/results.parquet}
mkdir -p "$(dirname "$W")"
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; git log -1 --format=%H; date -u; nproc; } > "$OUT/env.txt"
if [ ! -f "$TOK/token_table.json" ]; then
  PYTHONPATH=$PWD/src $PY -m scalerec text train --data "$DATA" --out "$TOK" --vocab-size 30000 > "$OUT/tokens.log" 2>&1 \
    || { echo "token table failed"; cat "$OUT/tokens.log"; exit 1; }
fi
md5sum "$TOK"/* >> "$OUT/env.txt"
sets="--set dataset=$DATA --set tokens=$TOK ${EXTRA_SETS:-}"  # EXTRA_SETS: e.g. a CPU smoke grid
adopt=""; [ -f "$ADOPT" ] && adopt="--adopt $ADOPT"
left=$(( LIM - ($(date +%s) - T0) - 30 ))   # margin to pack the results
if [ -n "${DRY:-}" ]; then
  PYTHONPATH=$PWD/src timeout "$left" $PY -m scalerec sweep "$SPEC" --out "$W" --dry-run $sets $adopt \
    > "$OUT/sweep_dry_run.log" 2>&1; echo "rc=$?" >> "$OUT/sweep_dry_run.log"; tail -30 "$OUT/sweep_dry_run.log"; exit 0
fi
PYTHONPATH=$PWD/src timeout "$left" $PY -m scalerec sweep "$SPEC" --out "$W" --parallel "$PAR" $sets $adopt \
  >> "$W.log" 2>&1; echo "rc=$?" >> "$W.log"
pkill -f "scalerec sweep" 2>/dev/null; sleep 2   # workers a timeout left behind
cp "$W.log" "$OUT/sweep.log"
[ -f "$W/results.parquet" ] && cp "$W/results.parquet" "$OUT/"
PYTHONPATH=$PWD/src $PY - "$W" <<'PY' | tee "$OUT/summary.txt"
import sys

from scalerec.scaling.sweep import read_results

rows = read_results(sys.argv[1])
if not rows:
    sys.exit("no results.parquet yet")
ok = [r for r in rows if r.get("status") == "ok"]
adopted = sum(bool(r.get("adopted_from")) for r in rows)
print(f"{len(rows)} rows: {len(ok)} ok ({adopted} adopted from earlier calls), {len(rows) - len(ok)} not ok")
PY
uptime >> "$OUT/env.txt"
ls -la "$OUT"
