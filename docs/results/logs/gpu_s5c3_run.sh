#!/usr/bin/env bash
# Session 5, call 3: Games text model, 3 seeds over 2 GPUs, 150-epoch cap (device time), issue 4.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
W=/tmp/gt; mkdir -p $W && cp -r gpu/acc/data gpu/acc/tokens $W/
ACC="timeout 470 python benchmarks/accuracy.py --device cuda --mask-seen --no-write --work $W --datasets games --variants text_ce
 --set train.compile=true --set train.batch_size=256 --set train.epochs=150"
CUDA_VISIBLE_DEVICES=0 taskset -c 0-15 $ACC --seeds 0,1 --jobs 2 > $OUT/games_text_a.log 2>&1 &
CUDA_VISIBLE_DEVICES=1 taskset -c 16-31 $ACC --seeds 2 --jobs 1 > $OUT/games_text_b.log 2>&1
wait
for f in $OUT/*.log; do grep -h '"event": "\(run\|summary\|error\)"' $f | cut -c1-420; done
for d in $W/runs/*; do echo "$d $(grep -o '"valid/ndcg@10": [0-9.]*' $d/metrics.jsonl 2>/dev/null | sort -t: -k2 -g | tail -1) evals=$(grep -c valid/ndcg $d/metrics.jsonl 2>/dev/null) final=$(test -f $d/final.json && echo y)"; done
cd $W && tar czf $OUT/games_text_runs.tgz runs/*/*.json runs/*/metrics.jsonl 2>/dev/null
