#!/usr/bin/env bash
# Batch 12 (session 3): GPU1 = Sports (new config) + Games ID-SASRec, 3 seeds each (issue 4);
# GPU0 = paper-1M default recipe + xl with 8 heads (issue 10), then text-model columns (issue 4);
# CPU = serving benchmark, server pinned to cores 14,15, client on 16-31 (issue 6).
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
T0=$(date +%s); left() { echo $(( $1 - $(date +%s) + T0 )); }
mkdir -p gpu/final && cp -r gpu/acc/data gpu/acc/tokens gpu/final/
CUDA_VISIBLE_DEVICES=1 taskset -c 0-9 timeout 470 python benchmarks/accuracy.py --work gpu/final --datasets sports,games \
  --variants sasrec_ce --seeds 0,1,2 --jobs 6 --device cuda --mask-seen --no-write --set train.compile=true \
  > $OUT/acc.log 2>&1 &
( taskset -c 16-31 timeout 240 python benchmarks/serve.py --duration 60 --baseline-duration 10 --server-cpus 14,15 \
  > $OUT/serve.jsonl 2> /tmp/serve.err
  taskset -c 16-31 timeout $(left 465) python benchmarks/serve.py --duration 60 --no-baseline --server-cpus 14,15 \
  --search-threads 2 >> $OUT/serve.jsonl 2>> /tmp/serve.err ) &
export CUDA_VISIBLE_DEVICES=0
TP="taskset -c 10-13 timeout 150 python benchmarks/train_throughput.py --device cuda --steps 20"
$TP --sizes paper-1M --batches 16384 > $OUT/tp.jsonl 2> /tmp/tp.err
$TP --sizes xl --batches 2048 --skip-paper --set model.dropout=0 model.n_heads=8 >> $OUT/tp.jsonl 2>> /tmp/tp.err
grep -h '"kind": "\(ours\|paper_mode\|summary\)"' $OUT/tp.jsonl | cut -c1-420
mkdir -p gpu/text && cp -r gpu/acc/data gpu/acc/tokens gpu/text/
taskset -c 10-13 timeout $(left 470) python benchmarks/accuracy.py --work gpu/text --datasets beauty,sports \
  --variants text_ce --seeds 0 --jobs 2 --device cuda --mask-seen --no-write --set train.compile=true --set train.batch_size=256 > $OUT/text.log 2>&1
wait
tail -3 /tmp/serve.err; cut -c1-600 $OUT/serve.jsonl
for f in $OUT/acc.log $OUT/text.log; do grep -h '"event": "summary"' $f | cut -c1-420; done
for d in gpu/final/runs/* gpu/text/runs/*; do echo "$d $(grep -o '"valid/ndcg@10": [0-9.]*' $d/metrics.jsonl 2>/dev/null | sort -t: -k2 -g | tail -1) evals=$(grep -c valid/ndcg $d/metrics.jsonl 2>/dev/null)"; done
