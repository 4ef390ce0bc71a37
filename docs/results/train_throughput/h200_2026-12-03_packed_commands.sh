#!/usr/bin/env bash
# GPU call 1: packed (padding-free) training — GPU tests, then real-data throughput (issue 24.1).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $OUT/device.txt
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a $OUT/device.txt
git log -1 --format=%H >> $OUT/device.txt 2>/dev/null
timeout 170 python -m pytest -q -p no:cacheprovider -m gpu tests/model/test_packed_attention.py tests/model/test_short_attention.py tests/train/test_train_batches.py tests/model/test_model_compile_gpu.py > $OUT/gpu_tests.log 2>&1; tail -4 $OUT/gpu_tests.log
TP="python benchmarks/train_throughput.py --device cuda --sizes paper-1M --seq-len 50 --steps 20 --skip-paper"
timeout 230 $TP --dataset gpu/games --tokens gpu/games-tokens --batches 4096 8192 > $OUT/tp_real_games.jsonl 2> $OUT/tp_real_games.err
timeout 110 $TP --dataset gpu/beauty --tokens gpu/beauty-tokens --batches 4096 > $OUT/tp_real_beauty.jsonl 2> $OUT/tp_real_beauty.err
grep -h '"kind": "real_summary"' $OUT/tp_real_*.jsonl | cut -c1-700; tail -2 $OUT/tp_real_*.err
