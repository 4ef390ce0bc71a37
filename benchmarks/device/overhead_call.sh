#!/usr/bin/env bash
# One device call that says where the GPU time of small runs and of the moonshot configs goes (<= 9 min).
#
# Why: every study that spends this project's device time is bound by per-step cost that is not the model's
# arithmetic. The Sports ID-SASRec runs (d 128, batch 128 users, ~700 targets per step) ran at ~25 ms a step
# with 16 on one H100 (2026-12-06, docs/results/accuracy/h100_2026-12-06_sports_select_low/). world_v5's
# batch-256 trunks reached only 0.19-0.25M targets/s (docs/results/world_v6_plan/README.md), which is what puts
# issue 18's grid at ~3 H200-hours.
# Ran once (2026-12-06, one H100; BENCHMARKS.md, step overhead and moonshots): alone on the card the Sports step
# is 5.2-5.5 ms, and CUDA graphs (compile mode reduce-overhead) halve it; the profiles of paper-1M and of xl
# with dropout are committed. What this call now checks (the profiles only with PROFILES=1):
#   1. `benchmarks/step_overhead.py` on CUDA, Sports ID-SASRec as the accuracy runs train it, default compile
#      vs CUDA graphs, packed (through two epochs of the real loop: validation, logging and saves between
#      graph replays) and padded (the step alone).
#   2. the GPU test that CUDA graphs train as the default compiled step does, packed and padded
#      (tests/train/test_train_loop.py -m gpu -k cuda_graphs).
#   3. SHARED=N (ONLY_SHARED=1 skips 1-2): N processes on one card, default compile vs CUDA graphs.
#   4. PROFILES=1: `benchmarks/profile_train.py`, paper-1M at batch 16,384 and xl at batch 2,048 with the
#      default recipe's dropout (the moonshots' configs), kernels grouped by kind.
# Inputs: bash benchmarks/device/prepare_carry.sh (gpu/acc_more, carried).
#   run(carry=["gpu/acc_more/data/sports"], command="OUT=$OUT bash benchmarks/device/overhead_call.sh")
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src:$PWD/benchmarks
OUT=${OUT:-/tmp/overhead_out}; mkdir -p "$OUT"
PY=${PY:-python}
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; git log -1 --format=%H; date -u; nproc; uptime; } \
  > "$OUT/env.txt"
logged() {  # $1 log name, $2 seconds, rest: the command; its output and exit status go to $OUT/$1
  local log=$OUT/$1 limit=$2; shift 2
  timeout "$limit" "$@" > "$log" 2>&1; echo "rc=$?" >> "$log"
}
# step_overhead.py on the Sports recipe as accuracy.py trains it (from configs/train/), every arm alike
SO=($PY benchmarks/step_overhead.py --device cuda --dataset sports --variant sasrec_ce --compile --warmup 20
    --data gpu/acc_more/data/sports)
so() {  # $1 log name, $2 seconds, rest: step_overhead.py arguments
  local name=$1 limit=$2; shift 2
  logged "$name.log" "$limit" "${SO[@]}" --steps 200 --repeat 2 "$@"
}
if [ -z "${ONLY_SHARED:-}" ]; then
so step_overhead_sports_packed 110 --packing on --loop-epochs 2 --mask-seen
# CUDA graphs (torch.compile mode reduce-overhead): packed and padded batches both have a fixed shape
# (rows x max_len), so the compiled step replays as graphs. The packed arm runs the real loop too, where the
# loop validates, logs and saves between graph replays (what the step timing alone does not cover).
so step_overhead_sports_packed_cudagraphs 110 --packing on --loop-epochs 2 --mask-seen \
  --set train.compile_mode=reduce-overhead
# PADDED=0 skips the padded arms (their step alone was measured on 2026-12-06; the packed arms are the ones
# whose loop the accuracy runs use)
if [ "${PADDED:-1}" != 0 ]; then
so step_overhead_sports_padded 90 --packing off
so step_overhead_sports_padded_cudagraphs 90 --packing off --set train.compile_mode=reduce-overhead
fi
logged gpu_test_cuda_graphs.log 150 $PY -m pytest -q -m gpu -k cuda_graphs tests/train/test_train_loop.py
fi
# SHARED=N (instead of the arms above: ONLY_SHARED=1): N processes on one card, as the accuracy jobs (12-18)
# and sweeps (14 workers) run, packed, default compile then CUDA graphs; their timed steps start together after
# warm-up (--start-at), so each one's model step is the shared card's. Alone, CUDA graphs halve the step
# (2026-12-06); whether they speed up a shared card is what decides their use in those jobs.
shared() {  # $1 compile mode
  local t=$(( $(date +%s) + ${SHARED_WARM_S:-100} )) i
  for i in $(seq 1 "$SHARED"); do
    timeout 240 "${SO[@]}" --steps 400 --steps-only --packing on --start-at "$t" \
      --set train.compile_mode="$1" > "/tmp/shared_$1_$i.log" 2>&1 &
  done
  wait
  for i in $(seq 1 "$SHARED"); do
    { echo "== $1 process $i of $SHARED"; grep '"model_step"\|"summary"' "/tmp/shared_$1_$i.log" | cut -c1-700; } \
      >> "$OUT/step_overhead_shared.log"
  done
}
if [ -n "${SHARED:-}" ]; then
  shared default
  shared reduce-overhead
  $PY benchmarks/shared_card_summary.py "$OUT/step_overhead_shared.log" | tee -a "$OUT/step_overhead_shared.log"
fi
# Ran on 2026-12-07 (one H100, SHARED=12): CUDA graphs 1.18x the card's aggregate step rate (8.18 vs 9.72 ms a
# step per process), against 1.94x alone (docs/results/step_overhead/h100_2026-12-07_shared12*.log).
# MOONSHOT=1: the two moonshot configs (paper-1M at batch 16,384; xl at batch 2,048 with the default recipe's
# dropout) under the default compile and under max-autotune-no-cudagraphs, whose Triton matmul templates can
# take the GELU and bias into the matmul epilogue (the profiles of 2026-12-06 put GELU at 17.5% of paper-1M's
# kernel time). Same call, so the ratios are same-run; autotuning adds minutes of compile to each.
if [ -n "${MOONSHOT:-}" ]; then
  for mode in default max-autotune-no-cudagraphs; do
    logged "moonshot_paper1m_$mode.log" 200 $PY benchmarks/train_throughput.py --device cuda --sizes paper-1M \
      --batches 16384 --compile --skip-paper --steps 30 --warmup 10 --set train.compile_mode=$mode
    logged "moonshot_xl_$mode.log" 200 $PY benchmarks/train_throughput.py --device cuda --sizes xl \
      --batches 2048 --compile --skip-paper --steps 20 --warmup 8 --set train.compile_mode=$mode model.bias=false
  done
fi
if [ -n "${PROFILES:-}" ]; then
  logged profile_paper1m_b16384.txt 85 $PY benchmarks/profile_train.py --device cuda --size paper-1M \
    --batch 16384 --compile --steps 5 --warmup 4 --top 30
  logged profile_xl_dropout.txt 85 $PY benchmarks/profile_train.py --device cuda --size xl --batch 2048 \
    --compile --steps 4 --warmup 4 --top 30 --set model.bias=false
fi
uptime >> "$OUT/env.txt"
grep -h '^{' "$OUT"/*.log "$OUT"/*.txt | cut -c1-400
# `if`, not `[ ] &&`: a false test as the last command would make the call's exit status 1
if [ -f "$OUT/gpu_test_cuda_graphs.log" ]; then tail -3 "$OUT/gpu_test_cuda_graphs.log"; fi
if [ -f "$OUT/step_overhead_shared.log" ]; then cut -c1-300 "$OUT/step_overhead_shared.log"; fi
