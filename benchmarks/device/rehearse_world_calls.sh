#!/usr/bin/env bash
# A CPU rehearsal of a world sweep's device calls, before any device time is spent on them: the same call
# script (benchmarks/device/world_v5_call.sh), cut by its timeout every call, chained on one "machine", then
# moved to a fresh one that starts from the carried tarball only, and continued until the sweep is complete.
# The spec is shrunk by SETS to CPU size; everything else (resume from state.pt, cooldown snapshots, pack_sweep's
# tarball and --carry-cut, --only) is what the device calls run. Why: world_v6's first three H100 calls lost
# every run to a resume gap no test covered, and this rehearsal, written after them, found a second one (a
# run killed before its first state.pt could not pause; 2026-12-07).
#
#   bash benchmarks/device/rehearse_world_calls.sh > docs/results/world_v6/cpu_<date>_call_chain_rehearsal.log
#
# Runs in a scratch clone of HEAD (~10 min on 2 cores); prints each call's pack line, its failed runs, and the
# sweep's end. KEEP=1 keeps the scratch dir (each call's sweep.log) for a post-mortem.
set -u
SPEC=${SPEC:-configs/sweeps/world_v6.toml}
NAME=$(basename "$SPEC" .toml)
CALL_S=${CALL_S:-60}
WORK=$(mktemp -d)
REPO=$(git rev-parse --show-toplevel)
git clone -q "$REPO" "$WORK/repo" && cd "$WORK/repo" || exit 1
export SETS=${SETS:-'device=cpu max_steps=240 sizes=["tiny","xs"] extra_seed_sizes=["tiny"] base.train.precision=fp32 base.train.save_state_s=5 base.train.warmup_steps=5 base.train.log_every=10 base.train.batch_size=16 world.eval_users=500'}
echo "# rehearsal of $SPEC at $(git log -1 --format=%h), calls of ${CALL_S} s, SETS=$SETS"
call() {  # one device call: $1 = label
  SPEC=$SPEC ONLY=holdout=false PAR=2 SWEEP_S=$CALL_S CARRY_CUT_MB=12 OUT="$WORK/out_$1" \
    bash benchmarks/device/world_v5_call.sh > "$WORK/call_$1.txt" 2>&1
  echo "call $1: $(grep -h 'jobs complete' "$WORK/call_$1.txt") | failed runs: $(grep -c '^failed' "$WORK/out_$1/sweep.log")"
  grep -h -A3 '^failed' "$WORK/out_$1/sweep.log" | head -12
  # done only when every run is ok: "sweep 25/40 runs ok" (15 failed) is not the end of the rehearsal
  grep -qE "sweep ([0-9]+)/\1 runs ok →" "$WORK/out_$1/sweep.log"
}
call 1; call 2
echo "# fresh machine: the sweep dir is gone, only call 2's tarball is carried"
mv "runs/$NAME" "$WORK/first_machine" && mkdir -p gpu && cp "$WORK/out_2/${NAME}_runs.tgz" gpu/
for i in $(seq 3 16); do
  if call "$i"; then grep -h "runs ok →" "$WORK/out_$i/sweep.log" | tail -1; break; fi
done
python -m scalerec fit "runs/$NAME" 2>/dev/null | grep -c "" | sed 's/^/fit: lines of output /'
if [ -n "${KEEP:-}" ]; then echo "kept: $WORK"; else rm -rf "$WORK"; fi
