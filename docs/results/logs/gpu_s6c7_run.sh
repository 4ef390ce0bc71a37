#!/usr/bin/env bash
# Session 6, call 7 (one H100): re-validate the attention kernels after moving them into their own
# module with shared JIT helpers (GPU tests, micro-benchmark, xl step).
set -u
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
timeout 150 python -m pytest -q -p no:cacheprovider -m gpu tests/model/test_short_attention.py tests/model/test_model_compile_gpu.py > $OUT/gpu_tests.log 2>&1; tail -3 $OUT/gpu_tests.log
MF="timeout 90 python benchmarks/model_forward.py --device cuda --only attention --steps 30"
for shape in "--size paper-1M --batch 16384 --dropout 0.1" "--size xl --batch 2048 --n-heads 16 --dropout 0"; do
  $MF $shape > /tmp/m.jsonl 2>&1
  echo "== $shape"; grep -h 'short\|"default"\|Error' /tmp/m.jsonl | grep -v math | cut -c1-160
  cat /tmp/m.jsonl >> $OUT/attention_micro.jsonl
done
timeout 100 python benchmarks/train_throughput.py --device cuda --steps 30 --sizes xl --batches 2048 --skip-paper \
  --set model.dropout=0 model.bias=false > $OUT/tp_xl.jsonl 2>/tmp/tp.err
grep -h '"kind": "ours"' $OUT/tp_xl.jsonl | cut -c1-120; grep -o '"targets_per_s": [0-9.]*\|"mfu": [0-9.]*' $OUT/tp_xl.jsonl; tail -2 /tmp/tp.err
