#!/usr/bin/env bash
# One device call that picks a world sweep's compile mode and starts the sweep under it (issue 18; world_v6).
# The mode is part of every run id, so it must be fixed before any run finishes, and the machine goes back
# seconds after a call ends, too soon to read the probe and start another call by hand: the probe
# (benchmarks/world_step_probe.py) runs first, benchmarks/device/pick_compile_mode.py turns its log into
# `--set` overrides (none for eager), and the rest of the call runs benchmarks/device/world_v5_call.sh with
# them. Later calls pass the same SETS (printed in $OUT/compile_choice.txt, and kept in runs/<name>/compile.sets
# for calls chained on the same machine), or the spec records the mode.
#
#   SPEC=configs/sweeps/world_v6.toml ONLY=size=tiny PAR=5 CARRY_CUT_MB=12 bash benchmarks/device/world_compile_then_sweep.sh
#   PROBE_MODES=eager,default ...   # world_v6's re-probe: reduce-overhead cannot beat default by 10% there (2026-12-07)
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 SCALEREC_CACHE=$PWD/gpu/cache
OUT=${OUT:-/tmp/world_compile_out}
SPEC=${SPEC:-configs/sweeps/world_v6.toml}
NAME=$(basename "$SPEC" .toml)
CALL_S=${CALL_S:-560}
START=$(date +%s)
mkdir -p "$OUT" runs gpu/cache
timeout "${PROBE_S:-380}" python benchmarks/world_step_probe.py "$SPEC" --out "runs/$NAME" \
  --sizes "${PROBE_SIZES:-m,tiny}" --modes "${PROBE_MODES:-eager,reduce-overhead,default}" --parallel "${PROBE_PAR:-3}" \
  --steps "${PROBE_STEPS:-500}" --warmup "${PROBE_WARMUP:-200}" --log-every "${PROBE_LOG_EVERY:-100}" > "$OUT/probe.log" 2> "$OUT/probe.err"
echo "probe rc=$? after $(( $(date +%s) - START )) s"; grep "^{" "$OUT/probe.log"
SETS=$(python benchmarks/device/pick_compile_mode.py "$OUT/probe.log" 2>> "$OUT/compile_choice.txt")
echo "SETS=$SETS" >> "$OUT/compile_choice.txt"; cat "$OUT/compile_choice.txt"
echo "$SETS" > "runs/$NAME/compile.sets"   # a call chained on this warm machine: SETS=$(cat runs/<name>/compile.sets)
tail -c 20000 "$OUT/probe.err" > "$OUT/probe.err.tail" && rm "$OUT/probe.err"
SETS="$SETS" SWEEP_S=$(( CALL_S - ($(date +%s) - START) - 20 )) OUT="$OUT" SPEC="$SPEC" \
  bash benchmarks/device/world_v5_call.sh
