#!/usr/bin/env bash
# Batch 11 (session 3): GPU1 = Sports sweep 2 around lr 5e-4 + bf16-residual accuracy check (issue 4, 10);
# GPU0 = train throughput with dynamic U (issue 10), then ml-100k / Games ID-SASRec seeds (issue 4).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
T0=$(date +%s)
acc() {  # gpu, name, datasets, seeds, variant, overrides...
  local gpu=$1 name=$2 ds=$3 seeds=$4 variant=$5; shift 5
  mkdir -p gpu/sw/$name && cp -r gpu/acc/data gpu/sw/$name/
  local sets=(); for o in "$@"; do sets+=(--set "$o"); done
  CUDA_VISIBLE_DEVICES=$gpu timeout $((565 - $(date +%s) + T0)) python benchmarks/accuracy.py --work gpu/sw/$name \
    --datasets $ds --variants $variant --seeds $seeds --jobs 6 --device cuda --mask-seen --no-write \
    --set train.compile=true "${sets[@]}" > /tmp/sw_$name.log 2>&1 &
}
acc 1 lr5 sports 1,2 sasrec_ce train.lr=5e-4
acc 1 lr3 sports 0 sasrec_ce train.lr=3e-4
acc 1 lr5wd sports 0 sasrec_ce train.lr=5e-4 train.weight_decay=0.1
acc 1 lr5do6 sports 0 sasrec_ce train.lr=5e-4 model.dropout=0.6
acc 1 lr5bf sports 0 sasrec_ce train.lr=5e-4 model.residual_bf16=true
acc 1 lr3wd sports 0 sasrec_ce train.lr=3e-4 train.weight_decay=0.1
acc 1 beautybf beauty 0 sasrec_ce model.residual_bf16=true
TP="timeout 200 python benchmarks/train_throughput.py --device cuda --steps 20"
export CUDA_VISIBLE_DEVICES=0
$TP --sizes paper-1M --batches 16384 > $OUT/tp.jsonl 2> $OUT/err.log
$TP --sizes paper-1M --batches 16384 --skip-paper --set model.residual_bf16=true >> $OUT/tp.jsonl 2>> $OUT/err.log
$TP --sizes xl --batches 2048 --skip-paper --set model.dropout=0 >> $OUT/tp.jsonl 2>> $OUT/err.log
$TP --sizes xl --batches 2048 --skip-paper --set model.dropout=0 model.residual_bf16=true >> $OUT/tp.jsonl 2>> $OUT/err.log
grep -h '"kind": "\(ours\|paper_mode\|summary\)"' $OUT/tp.jsonl | cut -c1-500
acc 0 other ml100k,games 0,1,2 sasrec_ce
wait
for f in /tmp/sw_*.log; do echo "== $f"; grep -h '"event": "\(run\|summary\)"' $f | cut -c1-700; done > $OUT/sweep.log
for d in gpu/sw/*/runs/*; do echo "$d $(grep -o '"valid/ndcg@10": [0-9.]*' $d/metrics.jsonl 2>/dev/null | sort -t: -k2 -g | tail -1) evals=$(grep -c valid/ndcg $d/metrics.jsonl 2>/dev/null)"; done >> $OUT/sweep.log
grep -h "run\b\|summary" $OUT/sweep.log | grep -o '"dataset": "[a-z0-9]*".\{0,60\}\|"mean": [0-9.]*\|"ndcg@10": [0-9.]*' | paste - - | head -40
tail -12 $OUT/sweep.log
