#!/usr/bin/env bash
# Session 5, calls 4 and 5 (SECOND=1) (one H100): xl d=1024 throughput / MFU, short kernel vs SDPA in the same run (issue 10).
set -u
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
TP="timeout 150 python benchmarks/train_throughput.py --device cuda --steps 20 --sizes xl --skip-paper --batches 2048"
NB="model.dropout=0 model.bias=false model.n_heads=8"
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
if [ "${THIRD:-0}" = 1 ]; then
$TP --set model.dropout=0 model.bias=false > $OUT/tp.jsonl 2>/tmp/tp.err
TORCHINDUCTOR_COORDINATE_DESCENT_TUNING=1 $TP --set model.dropout=0 model.bias=false >> $OUT/tp.jsonl 2>>/tmp/tp.err
elif [ "${SECOND:-0}" = 1 ]; then
$TP --set $NB > $OUT/tp.jsonl 2>/tmp/tp.err
$TP --set model.dropout=0 model.bias=false >> $OUT/tp.jsonl 2>>/tmp/tp.err
TP="${TP/--batches 2048/--batches 2560}"
$TP --set $NB >> $OUT/tp.jsonl 2>>/tmp/tp.err
$TP --set model.dropout=0 model.bias=false >> $OUT/tp.jsonl 2>>/tmp/tp.err
else
$TP --set $NB > $OUT/tp.jsonl 2>/tmp/tp.err
$TP --set $NB model.attention=sdpa >> $OUT/tp.jsonl 2>>/tmp/tp.err
$TP --set model.dropout=0 model.n_heads=8 >> $OUT/tp.jsonl 2>>/tmp/tp.err
fi
grep -h '"kind": "ours"' $OUT/tp.jsonl | python3 -c "
import sys, json
for l in sys.stdin:
    d = json.loads(l); print(d['batch'], {k: v for k, v in d.items() if k in ('targets_per_s', 'mfu', 'peak_mem_gib', 'warmup_s')})"
tail -3 /tmp/tp.err
