#!/usr/bin/env bash
# Session 6, call 6 (one H100): the issue-10 table after the fp32-scalar fix and with attention dropout
# in the kernel: paper-1M default recipe and xl beside the paper-faithful mode, same runs; xl profile.
set -u
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
T0=$(date +%s); left() { echo $(( $1 - $(date +%s) + T0 )); }
show() { grep -h '"kind": "\(ours\|paper\)' $1 | python3 -c "
import sys, json
for l in sys.stdin:
    d = json.loads(l); print(d['size'], d['kind'], d['batch'], d.get('overrides'), {k: v for k, v in d.items() if k in ('targets_per_s', 'mfu', 'peak_mem_gib', 'ratio_vs_paper')})"; }
TP="python benchmarks/train_throughput.py --device cuda --steps 30"
timeout 170 $TP --sizes paper-1M --batches 128 16384 > $OUT/tp_p1m.jsonl 2>/tmp/tp.err; show $OUT/tp_p1m.jsonl
timeout 200 $TP --sizes xl --batches 128 2048 --set model.dropout=0 model.bias=false > $OUT/tp_xl.jsonl 2>>/tmp/tp.err
timeout 90 $TP --sizes xl --batches 2048 --skip-paper --set model.dropout=0 model.bias=false model.activation=gelu_tanh >> $OUT/tp_xl.jsonl 2>>/tmp/tp.err
show $OUT/tp_xl.jsonl; tail -3 /tmp/tp.err
timeout $(left 560) python benchmarks/profile_train.py --device cuda --size xl --batch 2048 --compile \
  --set model.dropout=0 model.bias=false > $OUT/prof_xl.txt 2>&1
grep profile_train $OUT/prof_xl.txt | cut -c1-600; grep "%" $OUT/prof_xl.txt | head -14 | cut -c1-150
