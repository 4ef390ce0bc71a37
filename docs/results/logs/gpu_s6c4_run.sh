#!/usr/bin/env bash
# Session 6, call 4 (one H100): the attention kernel with fp32 scalars under torch.compile: GPU tests,
# micro eager vs compiled, paper-1M default recipe (dropout 0.1) kernel vs SDPA, xl with tanh GELU (issue 10).
set -u
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
timeout 150 python -m pytest -q -p no:cacheprovider -m gpu tests/model/test_short_attention.py tests/model/test_model_compile_gpu.py > $OUT/gpu_tests.log 2>&1; tail -3 $OUT/gpu_tests.log
MF="timeout 90 python benchmarks/model_forward.py --device cuda --only attention --steps 30"
for shape in "--size paper-1M --batch 16384 --dropout 0.1" "--size xl --batch 2048 --n-heads 16 --dropout 0"; do
  $MF $shape > /tmp/m.jsonl 2>&1
  echo "== $shape"; grep -h '"ms"\|ratio.*default\|Error' /tmp/m.jsonl | cut -c1-160
  cat /tmp/m.jsonl >> $OUT/attention_micro.jsonl
done
show() { grep -h '"kind": "ours"' $1 | python3 -c "
import sys, json
for l in sys.stdin:
    d = json.loads(l); print(d['size'], d['overrides'], {k: v for k, v in d.items() if k in ('targets_per_s', 'mfu', 'peak_mem_gib', 'warmup_s')})"; }
TP="timeout 100 python benchmarks/train_throughput.py --device cuda --steps 30 --sizes paper-1M --batches 16384 --skip-paper"
$TP --set model.attention=sdpa > $OUT/tp_p1m.jsonl 2>/tmp/tp.err
$TP --set model.attention=short >> $OUT/tp_p1m.jsonl 2>>/tmp/tp.err
show $OUT/tp_p1m.jsonl
TP="timeout 100 python benchmarks/train_throughput.py --device cuda --steps 40 --sizes xl --skip-paper --batches 2048"
$TP --set model.dropout=0 model.bias=false model.activation=gelu_tanh > $OUT/tp_xl.jsonl 2>>/tmp/tp.err
$TP --set model.dropout=0 model.bias=false >> $OUT/tp_xl.jsonl 2>>/tmp/tp.err
$TP --set model.dropout=0 model.bias=false model.activation=gelu_tanh >> $OUT/tp_xl.jsonl 2>>/tmp/tp.err
show $OUT/tp_xl.jsonl
tail -3 /tmp/tp.err
