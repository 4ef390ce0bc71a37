#!/usr/bin/env bash
# One device call of the world_v5 sweep (issue 18 items 3-4; configs/sweeps/world_v5.toml). The same script
# serves every call: the sweep resumes from the runs carried back in gpu/world_v5_runs.tgz, and only whole
# jobs (a trunk and all its branches) are packed back (benchmarks/device/pack_sweep.py). A job cut by the
# timeout stays on the machine: a call chained while it is warm resumes it from its state.pt; on a fresh
# machine it trains again (until 2026-12-07 packing deleted it on the machine too, so it always did),
# unless CARRY_CUT_MB let it ride back whole (small jobs only: 64 MiB come back per call).
#
#   bash benchmarks/device/world_v5_call.sh            # call 1, then call 2 (same command)
#   PAR=1 bash benchmarks/device/world_v5_call.sh      # call 3, only if the held-out s+ did not finish
#   SPEC=configs/sweeps/world_v5_long.toml PAR=5 SWEEP_S=400 bash benchmarks/device/world_v5_call.sh  # long runs
#   SPEC=configs/sweeps/world_v6.toml ONLY=size=m2 PAR=1 bash benchmarks/device/world_v5_call.sh  # one job alone
#
# Any other sweep too: SETS holds spec overrides (`--set`, also given to the packer), ADOPT a committed results
# table whose finished runs count as done (`scalerec sweep --adopt`). pooled_v2's 130 missing runs, with
# gpu/pooled and gpu/pooled_tokens carried (docs/results/pooled_v2/README.md says how they are built):
#   SPEC=configs/sweeps/pooled_v2.toml PAR=13 SETS="dataset=gpu/pooled tokens=gpu/pooled_tokens" \
#     ADOPT=docs/results/pooled_v2 bash benchmarks/device/world_v5_call.sh
#
# Expected on one H200 with 16 cores (benchmarks/world_call_plan.py, with step times fitted to world_v4 call 1):
# - call 1 finishes 16 of the 23 fitted jobs;
# - call 2 finishes the other 7, alongside the held-out s+ (7,500 steps). s+ finishes there only if it runs
#   at >= ~25 steps/s once it is alone (about 230 s into the call); otherwise it needs call 3 with PAR=1.
# After call 1, check the step times before call 2: `grep targets_per_s $OUT/sweep.log` for s and s2 (at
# batch 256, 12,800 targets per step). The plan assumes >= 33K targets/s for s; if s is slower, rerun
# benchmarks/world_call_plan.py with the measured --base-ms / --s-per-flop before spending call 2.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 SCALEREC_CACHE=$PWD/gpu/cache
OUT=${OUT:-/tmp/world_v5_out}
SPEC=${SPEC:-configs/sweeps/world_v5.toml}
NAME=$(basename "$SPEC" .toml)
RUNS=runs/$NAME
mkdir -p "$OUT" runs gpu/cache
nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/device.txt"; git log -1 --format=%H >> "$OUT/device.txt"
# the carried tarball never replaces a file already here: on a warm machine the sweep dir is as new or newer
# than anything carried, and on a fresh one a probe may already have written the world
if [ -f "gpu/${NAME}_runs.tgz" ]; then tar xzf "gpu/${NAME}_runs.tgz" -C runs --skip-old-files; fi
SET_ARGS=(); for kv in ${SETS:-}; do SET_ARGS+=(--set "$kv"); done
ADOPT_ARGS=(); if [ -n "${ADOPT:-}" ]; then ADOPT_ARGS=(--adopt "$ADOPT"); fi
ONLY_ARGS=(); for kv in ${ONLY:-}; do ONLY_ARGS+=(--only "$kv"); done   # e.g. ONLY=size=m2: that job alone
timeout "${SWEEP_S:-540}" python -m scalerec sweep "$SPEC" --out "$RUNS" --parallel "${PAR:-12}" \
  "${SET_ARGS[@]}" "${ADOPT_ARGS[@]}" "${ONLY_ARGS[@]}" > "$OUT/sweep.log" 2>&1
echo "sweep rc=$?"
# CARRY_CUT_MB: cut jobs ride back whole up to this many MB (world_v6's small trunks), so a fresh machine resumes them
python benchmarks/device/pack_sweep.py "$SPEC" "$RUNS" "$OUT/${NAME}_runs.tgz" ${SETS:-} --carry-cut "${CARRY_CUT_MB:-0}"
grep -c "^ok " "$OUT/sweep.log"; grep "^sweep\|failed\|Error" "$OUT/sweep.log" | tail -5; uptime
# once every job is done (after the last call, on any machine with the runs dir):
#   python -m scalerec fit runs/world_v5 && python -m scalerec report runs/world_v5
#   python benchmarks/world_results_tables.py runs/world_v5/results.parquet
