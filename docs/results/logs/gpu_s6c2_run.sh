#!/usr/bin/env bash
# Session 6, call 2 (one H100): why paper-1M with dropout is slower on the Triton attention kernel
# (profiles, short vs SDPA); xl exact vs tanh GELU in one run; xl profile at 16 heads (issue 10).
set -u
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
PR="timeout 100 python benchmarks/profile_train.py --device cuda --compile --top 22"
$PR --size paper-1M --batch 16384 --set model.attention=short > $OUT/prof_p1m_short.txt 2>&1; grep -v Warn $OUT/prof_p1m_short.txt | cut -c1-160 | tail -23
$PR --size paper-1M --batch 16384 --set model.attention=sdpa > $OUT/prof_p1m_sdpa.txt 2>&1; grep -v Warn $OUT/prof_p1m_sdpa.txt | cut -c1-160 | tail -23
TP="timeout 110 python benchmarks/train_throughput.py --device cuda --steps 40 --sizes xl --skip-paper --batches 2048"
$TP --set model.dropout=0 model.bias=false > $OUT/tp.jsonl 2>/tmp/tp.err
$TP --set model.dropout=0 model.bias=false model.activation=gelu_tanh >> $OUT/tp.jsonl 2>>/tmp/tp.err
grep -h '"kind": "ours"' $OUT/tp.jsonl | python3 -c "
import sys, json
for l in sys.stdin:
    d = json.loads(l); print(d['overrides'], {k: v for k, v in d.items() if k in ('targets_per_s', 'mfu', 'peak_mem_gib', 'warmup_s')})"
tail -3 /tmp/tp.err
$PR --size xl --batch 2048 --set model.dropout=0 model.bias=false > $OUT/prof_xl.txt 2>&1; grep -v Warn $OUT/prof_xl.txt | cut -c1-160 | tail -23
