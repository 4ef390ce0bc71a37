#!/usr/bin/env bash
# Session 6, call 1 (one H100): GPU tests of the attention kernel's dropout path; the FFN sub-block
# (GELU) micro-benchmark per compile mode; paper-1M default recipe (dropout 0.1) kernel vs SDPA (issue 10).
set -u
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
timeout 150 python -m pytest -q -p no:cacheprovider -m gpu tests/model/test_short_attention.py tests/model/test_model_compile_gpu.py > $OUT/gpu_tests.log 2>&1; tail -3 $OUT/gpu_tests.log
timeout 240 python benchmarks/model_forward.py --device cuda --only ffn --size xl --batch 2048 --steps 20 > $OUT/ffn.jsonl 2>$OUT/ffn.err
cut -c1-220 $OUT/ffn.jsonl; tail -2 $OUT/ffn.err
timeout 60 python benchmarks/model_forward.py --device cuda --only attention --dropout 0.1 --steps 30 --size paper-1M --batch 16384 > $OUT/micro.jsonl 2>&1
grep -h ratio $OUT/micro.jsonl | cut -c1-200
TP="timeout 120 python benchmarks/train_throughput.py --device cuda --steps 30 --sizes paper-1M --batches 16384 --skip-paper"
$TP --set model.attention=sdpa > $OUT/tp.jsonl 2>/tmp/tp.err
$TP --set model.attention=short >> $OUT/tp.jsonl 2>>/tmp/tp.err
grep -h '"kind": "ours"' $OUT/tp.jsonl | python3 -c "
import sys, json
for l in sys.stdin:
    d = json.loads(l); print(d['overrides'], {k: v for k, v in d.items() if k in ('targets_per_s', 'mfu', 'peak_mem_gib', 'warmup_s')})"
tail -3 /tmp/tp.err
