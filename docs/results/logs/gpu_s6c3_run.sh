#!/usr/bin/env bash
# Session 6, call 3 (one H100): the forward attention kernel with several heads per program (software
# pipelined) vs one head per program; the op eager vs compiled with dropout; xl step with it (issue 10).
set -u
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
timeout 150 python -m pytest -q -p no:cacheprovider -m gpu tests/model/test_short_attention.py tests/model/test_model_compile_gpu.py > $OUT/gpu_tests.log 2>&1; tail -3 $OUT/gpu_tests.log
MF="timeout 90 python benchmarks/model_forward.py --device cuda --only attention --steps 30"
for shape in "--size xl --batch 2048 --n-heads 16 --dropout 0" "--size xl --batch 2048 --n-heads 8 --dropout 0" "--size paper-1M --batch 16384 --dropout 0.1"; do
  for heads in "1" "1 2 4"; do
    $MF $shape --fwd-heads $heads > /tmp/m.jsonl 2>&1
    echo "== $shape heads $heads"; grep -h 'short_triton"\|"default"\|best_config\|Error' /tmp/m.jsonl | cut -c1-220
    cat /tmp/m.jsonl >> $OUT/attention_micro.jsonl
  done
done
timeout 120 python gpu/dropout_diag.py > $OUT/dropout_diag.txt 2>&1; tail -6 $OUT/dropout_diag.txt
TP="timeout 110 python benchmarks/train_throughput.py --device cuda --steps 40 --sizes xl --skip-paper --batches 2048"
$TP --set model.dropout=0 model.bias=false model.activation=gelu_tanh > $OUT/tp.jsonl 2>/tmp/tp.err
$TP --set model.dropout=0 model.bias=false model.activation=gelu_tanh >> $OUT/tp.jsonl 2>>/tmp/tp.err
grep -h '"kind": "ours"' $OUT/tp.jsonl | python3 -c "
import sys, json
for l in sys.stdin:
    d = json.loads(l); print(d['overrides'], {k: v for k, v in d.items() if k in ('targets_per_s', 'mfu', 'peak_mem_gib', 'warmup_s')})"
tail -3 /tmp/tp.err
