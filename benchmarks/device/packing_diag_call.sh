#!/usr/bin/env bash
# Issue 24 item 1, the follow-up of the same-run control (2026-12-05): the Beauty text model trained
# packed reached 0.0532 masked test NDCG@10 against padded 0.0563 (3 seeds each, one H200, one
# commit), and the packed runs' *training* loss stopped falling near step 16K and then rose, while
# the padded runs' kept falling. On the CPU the two streams hold the same (context, target) pairs per
# epoch and the kernel's packed dropout backward matches its reference in the interpreter at the
# training shape, so this call separates what is GPU-only. Arms, seed 0 each, side by side:
#   packed_short  train.packing=on  (Triton short-attention kernel with positions: the default)
#   packed_sdpa   train.packing=on  model.attention=sdpa (PyTorch's block-diagonal mask)
#   padded_short  train.packing=off
#   packed_eager  train.packing=on  train.compile=false
# First the GPU tests of the kernels (incl. the dropout-with-positions backward test).
# Carry: gpu/acc_ctrl (benchmarks/accuracy.py's prepared Beauty), or nothing when the transfer study's
# runs/transfer_v2/data/beauty is carried (the same parquet files). Rerun on the warm machine to go on.
# SIDE='cmd' runs beside the arms with OUT=$OUT/side (e.g. SIDE='bash benchmarks/device/transfer_v2_call.sh'
# with that script's settings in the environment); its stdout goes to $OUT/side.txt.
#
#   OUT=$OUT LIM=540 bash benchmarks/device/packing_diag_call.sh
#   OUT=$OUT LIM=400 ARMS= bash benchmarks/device/packing_diag_call.sh     # GPU tests + probe only
#
# Stage 1 ran on one H100 on 2026-12-05 (docs/results/accuracy/h100_2026-12-05_packing_diag): all three
# packed arms plateaued above padded late in training (the kernel's packed arm first), and the probe
# found packed gradients as exact as padded ones at trained weights. Stage 2 separates batch composition
# from layout and precision, eager (stage 1's packed_eager showed the gap without compilation):
#   unpacked_eager train.packing=unpacked (the packed stream's batches laid out padded)
#   packed_fp32    train.packing=on train.precision=fp32 (the CPU packed run that followed padded was fp32;
#                  on CUDA: TF32 matmuls, as scalerec.device sets them, and SDPA, the kernel being bf16/fp16 only)
#   padded_eager   train.packing=off, eager;  packed_eager as in stage 1 (its seed 0 is done: SEEDS=1,2 adds seeds)
#   packed_noclip, padded_noclip   train.grad_clip=0 (the recipe clips at 1.0; the two streams' batches differ
#                  in windows per batch, so the clip may bite differently late in training: every train line
#                  now logs train/grad_norm and train/clipped, and these two arms test the clip directly)
#   OUT=$OUT LIM=540 STAGE=2 SEEDS=0,1 PROBE= bash benchmarks/device/packing_diag_call.sh
# Stage 2 ran on one H100 on 2026-12-05 (fourteenth session): packed in fp32 followed the padded curves epoch
# for epoch, like the CPU's fp32 packed run, while every bf16 packed run fell behind from ~epoch 120; the
# clip made no difference (README of that folder, epoch_compare.log). The CPU then traced the stall to the
# loss's bf16 logits (a common offset grows to ~133, where bf16's step is 1.0), and the loss's logits
# matmul now runs in fp32 by default (train.logits_precision=fp32). Stage 3 asks whether packed bf16 with
# fp32 logits keeps padded's accuracy over 3 seeds, test read once per run, same run, the product path
# (compiled, bf16 autocast, the new default logits in both arms):
#   packed_f32logits  train.packing=on
#   padded_short      train.packing=off
#   OUT=$OUT LIM=540 STAGE=3 SEEDS=0,1,2 PROBE= bash benchmarks/device/packing_diag_call.sh
# BENCH=1 then times fp32 against bf16 logits (benchmarks/logits_precision.py) once the arms are done.
# Stage 3 ran on one H100 on 2026-12-05 (fifteenth session): packed 0.0523 vs padded 0.0568, so fp32 logits do
# not close the GPU gap; the packed runs' pre-clip gradient norm climbs late while padded and packed fp32 stay
# near 1. Stage 4 separates the remaining bf16 parts, 3 seeds each, compiled, same run:
#   packed_fp32c   train.packing=on train.precision=fp32 (TF32 matmuls and SDPA on CUDA)
#   packed_res32   train.packing=on model.residual_bf16=false (bf16 matmuls, fp32 residual stream)
#   padded_short   train.packing=off
#   OUT=$OUT LIM=540 STAGE=4 SEEDS=0,1,2 PROBE= bash benchmarks/device/packing_diag_call.sh
# Stage 4 (sixteenth session, one H100, one call before the machine was taken back) showed the cause: under
# bf16 the logits' common offset (eval's logit_mean) grows ~2x per 20 epochs in packed runs (1 -> 115-295
# by epoch 130, fp32 residual or not) while it stays near 1 in packed fp32 runs. Stage 5 asks whether a
# z-loss pins it and keeps padded's training curve, and whether padded bf16 drifts too, 2 seeds each:
#   packed_z       train.packing=on train.z_loss=1e-4
#   packed_short   train.packing=on (the default: its offset never measured)
#   padded_short   train.packing=off
#   packed_nored   train.packing=on, cuBLAS's bf16 reduced-precision (split-K) reductions off
#                  (torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction, on by default): a
#                  CUDA-only rounding that the CPU's Office run, which did not drift, lacks. Set by a
#                  sitecustomize.py on the arm's PYTHONPATH (`SITE=nored` in an arm's sets), so every process
#                  of the arm starts with it.
#   OUT=$OUT LIM=540 STAGE=5 SEEDS=0,1 PROBE= bash benchmarks/device/packing_diag_call.sh
# Stage 5 ran one 480-s call on one H200 on 2026-12-06 (ARMS="packed_z padded_short" SEEDS=0,1,2, beside 8 pooled_v3
# workers): padded bf16 held its offset near 1 and the z-loss held packed's near -log(catalog), but every run was cut
# (packed at epoch 95, padded at 68) before the epochs where packed bf16 used to fall behind. Finishing needs ~2 more
# calls on the same warm machine (a run's checkpoint, ~22 MB with Adam's state, is too large to carry across).
# Stage 5b (nineteenth session) reran those two arms on one H100 in three chained calls (the third with
# ARMS=padded_short LIM=530), every run finished: packed + z-loss 0.0544 against padded 0.0567, -0.0023
# [-0.0064, +0.0019], where packed without it was -0.0044; the z-loss became the default for packed bf16 runs.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/packing_diag_out}; mkdir -p "$OUT" runs
LIM=${LIM:-540}
T0=$(date +%s)
DEV=${DEV:-cuda}
PY=${PY:-python}
QUICK=${QUICK:-}                   # CPU dry run: DEV=cpu QUICK=--quick
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; git log -1 --format=%H; date -u; nproc; } > "$OUT/env.txt"
beauty_data() {  # $1 work dir: its data/beauty from whichever prepared copy was carried (the same parquet)
  [ -d "$1/data/beauty" ] && return 0
  mkdir -p "$1/data"
  if [ -d gpu/acc_ctrl/data/beauty ]; then cp -r gpu/acc_ctrl/data/beauty "$1/data/"
  else cp -r runs/transfer_v2/data/beauty "$1/data/"; fi
}
left_s() { echo $(( LIM - ($(date +%s) - T0) - ${1:-0} )); }  # seconds left in the call, minus a margin
# the side job starts first, so its own limit counts from the call's start (LIMIT_S capped by LIM)
if [ -n "${SIDE:-}" ]; then
  (mkdir -p "$OUT/side"; side_lim=${LIMIT_S:-530}; [ "$side_lim" -gt "$(left_s 10)" ] && side_lim=$(left_s 10)
   OUT=$OUT/side LIMIT_S=$side_lim bash -c "$SIDE" > "$OUT/side.txt" 2>&1) &
fi
if [ "$DEV" = cuda ] && [ ! -f runs/diag_gpu_tests_done ]; then
  PYTHONPATH=$PWD/src timeout 150 $PY -m pytest -q -p no:cacheprovider -m gpu \
    tests/model/test_packed_attention.py tests/model/test_short_attention.py > "$OUT/gpu_tests.log" 2>&1
  echo "rc=$?" >> "$OUT/gpu_tests.log"; touch runs/diag_gpu_tests_done
fi
# The gradient probe (benchmarks/packing_grad_probe.py): loss and gradients of the same windows packed and
# padded along every path (kernel/SDPA × bf16/fp32 × compiled/eager), against padded SDPA fp32. First at
# freshly initialised weights (the config of a run trained 0.05 epochs for the purpose), beside the arms;
# on a later call (warm machine) at the best weights of each finished arm. ~5 min each (4 compiled paths,
# each compiled twice: dropout off, then on). PROBE= (empty) skips it.
probe() {  # $1 run dir, $2 log name, $3 extra args; never past the call's end
  [ -f "$1/model.safetensors" ] || return 0
  local lim=${PROBE_S:-300}; [ "$lim" -gt "$(left_s 15)" ] && lim=$(left_s 15)
  [ "$lim" -ge 60 ] || { echo "skipped: ${lim}s left" > "$OUT/$2.log"; return 0; }
  PYTHONPATH=$PWD/src timeout "$lim" $PY benchmarks/packing_grad_probe.py --run "$1" --device "$DEV" \
    --batches "${PROBE_BATCHES:-4}" --draws "${PROBE_DRAWS:-16}" $3 > "$OUT/$2.log" 2>&1; echo "rc=$?" >> "$OUT/$2.log"
}
if [ -n "${PROBE-1}" ]; then
  (w=runs/diag_probe
   if [ ! -f runs/diag_probe_done ]; then
     beauty_data "$w"
     OMP_NUM_THREADS=2 PYTHONPATH=$PWD/src:$PWD/benchmarks timeout "$(left_s 80)" $PY benchmarks/accuracy.py --device "$DEV" \
       --set train.packing=on --set train.epochs=0.05 --set eval.patience=0 --work "$w" --datasets beauty \
       --variants text_ce --seeds 0 --jobs 1 > "$OUT/probe_setup.log" 2>&1
     probe "$w/runs/beauty_text_ce_s0" probe_init --init
     touch runs/diag_probe_done
   fi
   for arm in packed_short padded_short; do  # trained weights: only once an arm has finished
     r=runs/diag_$arm/runs/beauty_text_ce_s0
     if [ -f "$r/final.json" ] && [ ! -f "runs/diag_probe_$arm" ]; then
       (probe "$r" "probe_trained_$arm" ""; touch "runs/diag_probe_$arm") &
     fi
   done; wait) &
fi
arms="packed_short:--set=train.packing=on packed_sdpa:--set=train.packing=on,--set=model.attention=sdpa"
arms="$arms padded_short:--set=train.packing=off packed_eager:--set=train.packing=on,--set=train.compile=false"
if [ "${STAGE:-1}" = 2 ]; then
  arms="unpacked_eager:--set=train.packing=unpacked,--set=train.compile=false"
  arms="$arms packed_fp32:--set=train.packing=on,--set=train.precision=fp32,--set=train.compile=false"
  arms="$arms padded_eager:--set=train.packing=off,--set=train.compile=false"
  arms="$arms packed_eager:--set=train.packing=on,--set=train.compile=false"
  arms="$arms packed_noclip:--set=train.packing=on,--set=train.grad_clip=0,--set=train.compile=false"
  arms="$arms padded_noclip:--set=train.packing=off,--set=train.grad_clip=0,--set=train.compile=false"
elif [ "${STAGE:-1}" = 3 ]; then
  arms="packed_f32logits:--set=train.packing=on padded_short:--set=train.packing=off"
elif [ "${STAGE:-1}" = 4 ]; then
  arms="packed_fp32c:--set=train.packing=on,--set=train.precision=fp32"
  arms="$arms packed_res32:--set=train.packing=on,--set=model.residual_bf16=false padded_short:--set=train.packing=off"
elif [ "${STAGE:-1}" = 5 ]; then
  arms="packed_z:--set=train.packing=on,--set=train.z_loss=0.0001 packed_short:--set=train.packing=on"
  arms="$arms padded_short:--set=train.packing=off packed_nored:--set=train.packing=on,SITE=nored"
fi
# Every arm ran with train.z_loss 0 unless it set one: the default became auto on 2026-12-06 (1e-4 for packed bf16
# runs, after stage 5b), so each arm without its own value pins 0 and keeps measuring what it measured.
pinned=""; for a in $arms; do [[ $a == *z_loss* ]] && pinned="$pinned $a" || pinned="$pinned $a,--set=train.z_loss=0"; done
arms=$pinned
site_nored() {  # the PYTHONPATH entry whose sitecustomize.py turns the reduced-precision reductions off
  mkdir -p runs/site_nored
  cat > runs/site_nored/sitecustomize.py <<'PY'
import sys

import torch

torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
print("sitecustomize: allow_bf16_reduced_precision_reduction = False", file=sys.stderr)
PY
  echo "$PWD/runs/site_nored:"
}
# ARMS="packed_short padded_short" keeps some arms; ARMS= (empty) none: a short call then runs only the GPU
# tests and the probe at initial weights, the answers that take minutes rather than a training run
if [ -n "${ARMS+x}" ]; then
  keep=""; for a in $arms; do [[ " $ARMS " == *" ${a%%:*} "* ]] && keep="$keep $a"; done; arms=$keep
fi
left=$(left_s 0)
n_seeds=$(echo "${SEEDS:-0}" | tr ',' '\n' | grep -c .)
for arm in $arms; do
  name=${arm%%:*}; sets=${arm#*:}; w=runs/diag_$name
  site=""; [[ $sets == *SITE=nored* ]] && { site=$(site_nored); sets=${sets//SITE=nored/}; sets=${sets%,}; }
  beauty_data "$w"
  compile="--set train.compile=true"; [[ $sets == *compile=false* || $DEV != cuda ]] && compile=""
  (OMP_NUM_THREADS=2 PYTHONPATH=$site$PWD/src:$PWD/benchmarks timeout "$left" $PY benchmarks/accuracy.py \
    --device "$DEV" $QUICK --mask-seen $compile ${sets//,/ } --work "$w" --datasets beauty --variants text_ce \
    --seeds "${SEEDS:-0}" --jobs "$n_seeds" >> "$OUT/$name.jsonl" 2>&1; echo "rc=$?" >> "$OUT/$name.jsonl") &
done
wait
if [ -n "${BENCH:-}" ] && [ "$(left_s 20)" -ge 120 ]; then  # the GPU is free of the arms (a side job may run on)
  PYTHONPATH=$PWD/src timeout "$(left_s 20)" $PY benchmarks/logits_precision.py --device "$DEV" --compile \
    > "$OUT/logits_precision.log" 2>&1; echo "rc=$?" >> "$OUT/logits_precision.log"
fi
uptime >> "$OUT/env.txt"
tail -2 "$OUT/gpu_tests.log" 2>/dev/null
for f in "$OUT"/probe_*.log; do [ -f "$f" ] && { echo "== $f"; sed -n '/^path /,$p' "$f"; tail -1 "$f"; }; done
grep -H '"event": "run"\|rc=' "$OUT"/*.jsonl | cut -c1-300 | tee "$OUT/summary.txt"
# few files come back from a call: the arms' logs travel inside the tarball
mkdir -p runs/diag_logs && cp "$OUT"/*.jsonl "$OUT"/probe_*.log runs/diag_logs/ 2>/dev/null; rm -f "$OUT"/*.jsonl "$OUT"/probe_*.log
tar czf "$OUT/diag_runs.tgz" runs/diag_logs runs/diag_*/runs/*/final.json runs/diag_*/runs/*/metrics.jsonl 2>/dev/null
ls -la "$OUT"
