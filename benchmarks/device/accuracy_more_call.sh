#!/usr/bin/env bash
# Issue 19 items 4-5: the accuracy table's missing rows on one GPU, side by side in one call.
#   - Games ID-SASRec, 3 seeds (done on one H100 on 2026-12-05: 0.0573 with its log).
#   - Yelp: ID-SASRec (done, 0.0327), text and hybrid, 3 seeds each, with most-popular (every run reports
#     it); the variant to report is chosen on validation NDCG@10, as for Beauty: the hybrid (job yelp_hybrid).
#   - Games hybrid, 3 seeds (job games_hybrid; not in the default set).
#   - Sports hybrid at full length, 3 seeds, the recipe chosen on validation (job sports_hybrid_full; not in the default set).
#   - ID-SASRec on Sports and Beauty re-selected on validation (jobs sports_sasrec_select, beauty_sasrec_select;
#     not in the default set), and the Sports hybrid at d=128 (job sports_hybrid_d128_select); the grids past
#     the ID winners' edges (sports_sasrec_select_low, run: 0.0338; sports_sasrec_select_lower,
#     beauty_sasrec_select_low), and Games ID-SASRec re-selected on validation (games_sasrec_select).
# ID runs are packed (measured unchanged for ID-SASRec on Beauty); text and hybrid runs are padded
# (bf16 packed text models lose accuracy late in training: BENCHMARKS.md, packing diagnostic).
# Datasets and token tables are prepared on the CPU first (the GPU image has no polars) and carried:
#   bash benchmarks/device/prepare_carry.sh                                              # gpu/acc_more, ~28 MB
#   run(carry=["gpu/acc_more/data/games", "gpu/acc_more/tokens/games"],      # the datasets of the jobs run:
#       command="OUT=$OUT LIM=540 ONLY=games_hybrid bash benchmarks/device/accuracy_more_call.sh")
# (all of gpu/acc_more, ~28 MB, no longer fits the 64-MiB limit beside the tracked tree, ~41 MB, 2026-12-06)
# ONLY="yelp_hybrid" runs a subset of the jobs (default: games_sasrec yelp_sasrec yelp_hybrid), e.g. as the
# SIDE job of packing_diag_call.sh, whose text arms already fill the card's CPU cores:
#   SIDE='LIM=$LIMIT_S ONLY=yelp_hybrid bash benchmarks/device/accuracy_more_call.sh'.
# Runs killed by the limit resume from their state.pt when the same command runs again on the warm
# machine (accuracy.py continues an unfinished run); finished runs are skipped. The runs live in W
# (runs/acc_more), outside the carried gpu/acc_more: a carried path is replaced by the local copy at every
# call, which on 2026-12-05 restarted the Games runs from scratch in each of three calls on one warm H100.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/accuracy_more_out}; mkdir -p "$OUT"
LIM=${LIM:-540}
T0=$(date +%s)
W=${W:-runs/acc_more}              # runs and logs (kept on the warm machine between calls)
DATA=${DATA:-$PWD/gpu/acc_more}     # prepared data and token tables (carried)
PY=${PY:-python}
DEV=${DEV:-cuda}
QUICK=${QUICK:-}                   # CPU pipeline check: DEV=cpu QUICK=--quick
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; git log -1 --format=%H; date -u; nproc; } > "$OUT/env.txt"
left=$(( LIM - ($(date +%s) - T0) - 15 ))
common="--device $DEV $QUICK --mask-seen --seeds ${SEEDS:-0,1,2}"
# 18 ID-SASRec runs need ~83 GB: all at once on a 141-GB H200, 16 at a time on an 80-GB H100
gpu_mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -1)
BIG_JOBS=${BIG_JOBS:-$([ "${gpu_mib:-0}" -gt 100000 ] && echo 18 || echo 16)}
[ "$DEV" = cuda ] && common="$common --set train.compile=true"
job() {  # $1 job name, rest: accuracy.py arguments. Each job has its own work dir (its accuracy.json and
  # runs), sharing the prepared data and token tables through links.
  local name=$1; shift
  [[ " ${ONLY:-games_sasrec yelp_sasrec yelp_hybrid} " == *" $name "* ]] || return 0
  mkdir -p "$W/$name"; ln -sfn "$DATA/data" "$W/$name/data"; ln -sfn "$DATA/tokens" "$W/$name/tokens"
  (OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src:$PWD/benchmarks timeout "$left" $PY benchmarks/accuracy.py $common \
     --work "$W/$name" "$@" >> "$W/$name.jsonl" 2>&1; echo "rc=$?" >> "$W/$name.jsonl") &
}
job games_sasrec --datasets games --variants sasrec_ce --set train.packing=on --jobs 3
job yelp_sasrec --datasets yelp --variants sasrec_ce --set train.packing=on --jobs 3
job yelp_text_hybrid --datasets yelp --variants text_ce,hybrid_ce --set train.packing=off --jobs 6
# the hybrid alone: on 2026-12-05 its unfinished runs led on validation (0.0456-0.0481 vs text 0.0246-0.0252
# and ID 0.0379-0.0398), so the text model's runs need not finish to choose the Yelp variant
job yelp_hybrid --datasets yelp --variants hybrid_ce --set train.packing=off --jobs 3
# Games has ID (0.0573) and a capped text row but no hybrid, the best model on validation on every other
# dataset with text (Beauty, Office, Scientific, Yelp)
job games_hybrid --datasets games --variants hybrid_ce --set train.packing=off --jobs 3
# Sports hybrid at full length: the lr x weight decay winner of the validation-only selection of 2026-12-03
# (lr 1e-3, wd 0.1, batch 512; docs/results/accuracy/h200_2026-12-03/sports_hybrid_selection.json), whose runs
# all hit that call's 4-minute cap. Here each run goes to its own early stop (patience 20, 200-epoch cap),
# padded, so the z-loss question of packed bf16 text models does not arise. Needs ~15 min per run: 2-3 calls
# on one warm machine.
job sports_hybrid_full --datasets sports --variants hybrid_ce --set train.packing=off --set train.lr=1e-3 \
  --set train.weight_decay=0.1 --set train.batch_size=512 --jobs 3
# ID-SASRec re-selected on validation (issue 19 item 1): the Sports (lr 3e-4, wd 0.1) and Beauty (d_model 128)
# recipes were picked on masked TEST NDCG@10 in 2026-11 sweeps. Here every candidate runs on seeds 0-2, the
# winner is chosen on validation NDCG@10 (benchmarks/selection.py; the table holds validation numbers only), and
# only the winner's test is read. Packed, as the ID runs above. 18 runs per job; ~6 min per run alone on an H100
# at batch 128 (2026-11-25), so 2-3 calls on one warm machine. Not in the default set. CPU pipeline check:
#   DEV=cpu QUICK=--quick SEEDS=0 SELECT_SEEDS=0 ONLY=beauty_sasrec_select PY=python bash benchmarks/device/accuracy_more_call.sh
# Ran on 2026-12-06 (one H100, docs/results/accuracy/h100_2026-12-06_id_selection/): both winners sit at the
# grid's low-LR edge (Sports lr 3e-4 wd 0.1, the old recipe; Beauty d_model 64, lr 3e-4). 18 side-by-side runs
# need ~83 GB at ~4.6 GB each: two hit CUDA OOM on the 80-GB card, so --jobs is $BIG_JOBS now: 16 on an H100 (the
# last two start as the first finish), 18 on an H200.
job sports_sasrec_select --datasets sports --variants sasrec_ce --set train.packing=on --select-seeds "${SELECT_SEEDS:-0,1,2}" \
  --grid train.lr=1e-3,5e-4,3e-4 --grid train.weight_decay=0.0,0.1 --jobs "$BIG_JOBS"
job beauty_sasrec_select --datasets beauty --variants sasrec_ce --set train.packing=on --select-seeds "${SELECT_SEEDS:-0,1,2}" \
  --grid model.d_model=64,128,256 --grid train.lr=1e-3,3e-4 --jobs "$BIG_JOBS"
# Past those edges (run on 2026-12-06: see below): Sports validation NDCG@10 rose at every step down in LR (1e-3: 0.0347-0.0359,
# 5e-4: 0.0383-0.0395, 3e-4: 0.0410-0.0418) and with weight decay (0.1 over 0 at every LR), so the grid goes on
# down in LR and up in decay, the old winner kept as a candidate. Lower LRs run longer (more epochs to the early
# stop: ~70 at 3e-4, so ~140 at 1.5e-4, ~7 s each with 16 runs on the card): the lowest LR is 1.5e-4, not 1e-4,
# whose runs would meet the 200-epoch cap and need a third warm call alone. The slowest candidates are listed
# first so they start first; the run names (config tags) do not depend on that order. 18 runs fit side by side
# on an H200 (141 GB), 16 on an H100.
job sports_sasrec_select_low --datasets sports --variants sasrec_ce --set train.packing=on --select-seeds "${SELECT_SEEDS:-0,1,2}" \
  --grid train.lr=1.5e-4,2e-4,3e-4 --grid train.weight_decay=0.1,0.3 --jobs "$BIG_JOBS"
# Games ID-SASRec (0.0573, 2026-12-05) ran Beauty's old test-selected recipe (d 128, lr 1e-3) untuned; issue 19
# item 1 asks for its recipe to be re-selected on validation too: the grid that re-chose Beauty's and Office's
# (d_model {64, 128} x lr {1e-3, 3e-4}), 12 runs of ~20 min each (3 side by side, 2026-12-05): ~3 warm calls.
job games_sasrec_select --datasets games --variants sasrec_ce --set train.packing=on --select-seeds "${SELECT_SEEDS:-0,1,2}" \
  --grid model.d_model=64,128 --grid train.lr=3e-4,1e-3 --jobs 12
# Ran on 2026-12-07 (one H200, 2 chained calls: 525 s stopped by LIM=540, then 72 s; runs resume from state.pt):
# d 64, lr 3e-4 wins (valid 0.0719; d 128 at lr 3e-4 0.0717; the old recipe last, 0.0642), test 0.0645 [0.0632,
# 0.0657] against 0.0573 (docs/results/accuracy/h200_2026-12-07_games_id_selection/) -- at the grid's low corner.
# Past it: a star centred on the winner (d {32, 64, 128} x lr {1e-3, 3e-4, 1e-4}, one axis at a time: 5 candidates,
# 15 runs), selected on 3 seeds as Office's flat grid taught (docs/results/accuracy/cpu_2026-12-07_office_id_star/),
# stopping before test if the winner is at an edge again. lr 1e-4 runs may reach the 200-epoch cap (~2x the ~90
# epochs of lr 3e-4): ~3 warm calls.
job games_sasrec_star --datasets games --variants sasrec_ce --set train.packing=on --select-seeds "${SELECT_SEEDS:-0,1,2}" \
  --grid model.d_model=32,64,128 --grid train.lr=1e-3,3e-4,1e-4 --grid-design star --stop-at-edge --jobs 15
# Ran on 2026-12-07 (one H100, 3 chained calls, 451 + 525 + 111 s): d 64 bracketed; lr 1e-4 wins (valid 0.0740 vs
# 0.0717, lead 20x the seed sd) at the star's LR edge AND the 200-epoch cap (best epochs 189-197), so test was not
# read (docs/results/accuracy/h100_2026-12-07_games_id_star/). Next: the cap lifted to 400 epochs and the LR
# bracketed from below, d 64 at lr {3e-4, 1e-4, 5e-5} (3e-4 stops early near 90 epochs either way, so the job
# selects on its own). 9 runs; lr 1e-4 took ~970 s per 200 epochs with 15 on the card: ~3-4 warm calls. Not run.
job games_sasrec_long --datasets games --variants sasrec_ce --set train.packing=on --set model.d_model=64 \
  --set train.epochs=400 --select-seeds "${SELECT_SEEDS:-0,1,2}" --grid train.lr=3e-4,1e-4,5e-5 --stop-at-edge --jobs 9
# CUDA graphs in whole runs (issue 24): the selected Sports recipe under torch.compile mode reduce-overhead, 3 seeds,
# to compare with the committed winner's runs (the same seeds: valid 0.0440, test 0.0338 [0.0328, 0.0348];
# docs/results/accuracy/h100_2026-12-06_sports_select_low/). The step alone ran 1.94x faster so (BENCHMARKS.md,
# step overhead); this checks that whole runs train, stop and score as before. ~1 warm call.
job sports_sasrec_cudagraphs --datasets sports --variants sasrec_ce --set train.packing=on \
  --set train.compile_mode=reduce-overhead --jobs 3
# Ran on 2026-12-07 (one H100, inside pooled_with_cudagraph_check_call.sh): valid 0.04394 vs 0.04396, test 0.0339
# [0.0328, 0.0350] vs 0.0338 [0.0328, 0.0348] (docs/results/accuracy/h100_2026-12-07_sports_cudagraphs/).
# Ran on 2026-12-06 (one H100, 2 calls; docs/results/accuracy/h100_2026-12-06_sports_select_low/): lr 1.5e-4 with
# wd 0.3 wins (valid 0.0440), test 0.0338 [0.0328, 0.0348], above the best published 0.0323 -- again at the grid's
# corner (lowest lr, highest decay). Past that corner (not run): lr {1.5e-4, 1e-4} x wd {0.3, 1.0}; runs at 1e-4
# may need the 200-epoch cap (~1,400 s each with 12 on the card): ~3 warm calls.
job sports_sasrec_select_lower --datasets sports --variants sasrec_ce --set train.packing=on --select-seeds "${SELECT_SEEDS:-0,1,2}" \
  --grid train.lr=1e-4,1.5e-4 --grid train.weight_decay=0.3,1.0 --jobs "$BIG_JOBS"
job beauty_sasrec_select_low --datasets beauty --variants sasrec_ce --set train.packing=on --select-seeds "${SELECT_SEEDS:-0,1,2}" \
  --grid model.d_model=32,64 --grid train.lr=3e-4,1e-4 --jobs 12
# Sports hybrid at ID-SASRec's width (issue 19 item 5): the hybrid so far used the text recipe's d=64, 1 head;
# ID-SASRec reaches 0.0325 on Sports at d=128, 2 heads, d_ffn 512. Here the hybrid at that width, lr {1e-3,
# 3e-4} x weight decay {0, 0.1}, batch 512 as the full-length run, padded; 3 seeds per candidate, the winner
# on validation NDCG@10, test read for the winner only. 12 runs of ~15 min alone: 3-4 warm calls.
job sports_hybrid_d128_select --datasets sports --variants hybrid_ce --set train.packing=off \
  --set model.d_model=128 --set model.n_heads=2 --set model.d_ffn=512 --set train.batch_size=512 \
  --select-seeds "${SELECT_SEEDS:-0,1,2}" --grid train.lr=1e-3,3e-4 --grid train.weight_decay=0.0,0.1 --jobs 12
# Office text model selected on the grid that re-chose Office's ID model and hybrid (d_model {64, 128} x lr {1e-3,
# 3e-4}, 3 seeds), so the Office row's best model is chosen among tuned text, ID and hybrid recipes. On a GPU its
# 12 small runs go side by side. Padded, as the other text runs. Carry gpu/acc_more/data/office and
# gpu/acc_more/tokens/office. Ran instead on the 2-core CPU on 2026-12-07 (packed, fp32; 1 h 46 min, not the ~4 h
# feared): the untuned d 64, lr 1e-3 wins (valid 0.0779), test unchanged at 0.0631
# (docs/results/accuracy/cpu_2026-12-07_office_text_selection/). Kept for a GPU re-run only if wanted.
job office_text_select --datasets office --variants text_ce --set train.packing=off --select-seeds "${SELECT_SEEDS:-0,1,2}" \
  --grid model.d_model=64,128 --grid train.lr=1e-3,3e-4 --jobs 12
wait
uptime >> "$OUT/env.txt"
grep -h '"event": "run"\|rc=' "$W"/*.jsonl | cut -c1-400 | tee "$OUT/summary.txt"
tar czf "$OUT/accuracy_more.tgz" "$W"/*.jsonl "$W"/*/runs/*/final.json "$W"/*/runs/*/eval*.json \
  "$W"/*/runs/*/metrics.jsonl "$W"/*/accuracy.json "$W"/*/selection/*.json 2>/dev/null
ls -la "$OUT"
