#!/usr/bin/env bash
# One device call of world_v6's batch x LR probe (issue 18; configs/sweeps/world_v6_probe.toml,
# docs/results/world_v6_plan/README.md): the three batch arms at equal streamed targets (48M), each its own
# sweep dir, packed back whole-job only (benchmarks/device/pack_sweep.py). The arms run one after another:
# each sweep fits its runs to the GPU memory free when it starts, and sweeps side by side do not coordinate
# (call 1 ran them together and 22 of 30 runs ran out of memory; docs/results/world_v6_probe).
# SIDE, if set, is a command run alongside (e.g. a transfer call's last cells).
#
#   bash benchmarks/device/world_v6_probe_call.sh
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 SCALEREC_CACHE=$PWD/gpu/cache
OUT=${OUT:-/tmp/world_v6_probe_out}
SPEC=configs/sweeps/world_v6_probe.toml
LIMIT=${LIMIT_S:-540}
mkdir -p "$OUT" runs gpu/cache "$OUT/logs"
nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/device.txt"; git log -1 --format=%H >> "$OUT/device.txt"
arm() {  # arm BATCH STEPS TIMEOUT
  timeout "$3" python -m scalerec sweep "$SPEC" --out "runs/world_v6_probe_b$1" --parallel 10 \
    --set "base.train.batch_size=$1" --set "max_steps=$2" > "$OUT/logs/sweep_b$1.log" 2>&1
  echo "arm b$1 rc=$?"
}
START=$(date +%s)
if [ -n "${SIDE:-}" ]; then (eval "$SIDE") > "$OUT/logs/side.log" 2>&1 & fi
arm 4096 235 "$LIMIT"
arm 1024 938 $(( LIMIT - ($(date +%s) - START) ))
arm 256 3750 $(( LIMIT - ($(date +%s) - START) ))
for b in 256 1024 4096; do
  python benchmarks/device/pack_sweep.py "$SPEC" "runs/world_v6_probe_b$b" "$OUT/world_v6_probe_b$b.tgz" \
    "base.train.batch_size=$b" "max_steps=$(case $b in 256) echo 3750;; 1024) echo 938;; 4096) echo 235;; esac)"
  grep -c "^ok " "$OUT/logs/sweep_b$b.log"
done
tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$OUT/logs"; ls -la "$OUT"; uptime
