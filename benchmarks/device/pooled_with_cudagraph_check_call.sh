#!/usr/bin/env bash
# One device call that moves issue 18's pooled_v3b sweep on and, on the same card, checks CUDA graphs in whole
# runs (issue 24), so a session short of device time spends none of it on a call of its own for the check.
#
#   - pooled_v3b (benchmarks/device/pooled_v3_call.sh) with 13 workers instead of 14, its results in $OUT/pooled;
#   - beside it, the accuracy job `sports_sasrec_cudagraphs` (benchmarks/device/accuracy_more_call.sh): the
#     selected Sports ID-SASRec recipe under `train.compile_mode=reduce-overhead`, 3 seeds, to compare with the
#     committed winner's runs (valid 0.0440, test 0.0338 [0.0328, 0.0348]); its results in $OUT/acc;
#   - the GPU test that CUDA graphs train as the default compiled step, packed and padded
#     (tests/train/test_train_loop.py -m gpu -k cuda_graphs), once per machine; its log in $OUT/pooled.
# None of these is a timing: the card and the 16 CPU cores are shared on purpose. The Sports runs resume from
# their state.pt when the same command runs again on the same warm machine; the sweep resumes anywhere from
# the committed results.parquet (copy $OUT/pooled/results.parquet to docs/results/pooled_v3b/ after each call).
#
#   run(carry=["gpu/pooled", "gpu/acc_more/data/sports", "gpu/acc_more/tokens/sports"],
#       command="OUT=$OUT bash benchmarks/device/pooled_with_cudagraph_check_call.sh")
# At most 8 files come back: pooled env/sweep.log/results.parquet/summary.txt/gputest.log, acc env/summary/tgz.
# Ran once on 2026-12-07 (one H100, LIM=480, 461 s): the GPU test passed, the three Sports runs finished and
# matched the default mode, pooled_v3b went from 19 to 26 runs.
# ACC_ONLY names another accuracy job for the side slot (its datasets carried instead of Sports), e.g. on
# 2026-12-07 (second session) ACC_ONLY=games_sasrec_select PAR=10 with gpu/acc_more/{data,tokens}/games, the GPU
# tests now including the resume of a run under CUDA graphs (test_cuda_graphs_run_resumes_...).
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/pooled_cg_out}; mkdir -p "$OUT/acc" "$OUT/pooled"
LIM=${LIM:-540}
if [ ! -f /tmp/gputest.done ]; then
  (PYTHONPATH=$PWD/src timeout 300 python -m pytest -q -m gpu -k cuda_graphs tests/train/test_train_loop.py \
     > /tmp/gputest.log 2>&1; echo "rc=$?" >> /tmp/gputest.log; touch /tmp/gputest.done) &
fi
(OUT=$OUT/acc LIM=$LIM ONLY=${ACC_ONLY:-sports_sasrec_cudagraphs} bash benchmarks/device/accuracy_more_call.sh > /tmp/acc.log 2>&1) &
SPEC=configs/sweeps/pooled_v3b.toml OUT=$OUT/pooled LIM=$LIM PAR=${PAR:-13} bash benchmarks/device/pooled_v3_call.sh
wait
rm -f "$OUT/pooled/tokens.log"   # the 8-file limit; the token table's md5 sums are in env.txt
if [ -f /tmp/gputest.log ]; then cp /tmp/gputest.log "$OUT/pooled/gputest.log"; tail -4 /tmp/gputest.log; fi
tail -20 /tmp/acc.log
