#!/usr/bin/env bash
# Session 6, call 5 (one H100): accuracy with attention dropout in the Triton kernel vs SDPA:
# Beauty ID-SASRec (dropout 0.5), seeds 0 and 1, model.attention=short vs sdpa, all four at once (issue 10).
set -u
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
for a in short sdpa; do mkdir -p /tmp/acc_$a && cp -r gpu/acc/data gpu/acc/tokens /tmp/acc_$a/; done
ACC="python benchmarks/accuracy.py --device cuda --mask-seen --no-write --set train.compile=true --datasets beauty --variants sasrec_ce --seeds 0,1 --jobs 2"
timeout 550 $ACC --work /tmp/acc_short --set model.attention=short > $OUT/beauty_short.log 2>&1 &
timeout 550 $ACC --work /tmp/acc_sdpa --set model.attention=sdpa > $OUT/beauty_sdpa.log 2>&1
wait
for a in short sdpa; do
  echo "== $a"; grep -h '"summary"\|"error"' $OUT/beauty_$a.log | cut -c1-400
  for f in /tmp/acc_$a/runs/*/final.json; do d=$(basename $(dirname $f)); cp $f $OUT/${a}_${d}_final.json; done
done
