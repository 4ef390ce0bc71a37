#!/usr/bin/env bash
# Session 5, call 1 (nvidia-h100-x2). GPU1: Games text x3 seeds + Beauty text seeds 1-2 (issue 4,
# resumable from state.pt). GPU0: fixed short-attention kernel (no graph break, autotuned warps):
# GPU tests, attention micro-benchmark, xl throughput A/B, profile (issue 10).
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
T0=$(date +%s); left() { echo $(( $1 - $(date +%s) + T0 )); }
mkdir -p gpu/t && cp -rn gpu/acc/data gpu/acc/tokens gpu/t/
test -f gpu/t_runs.tgz && tar xzf gpu/t_runs.tgz
LIMIT=${LIMIT:-555}
ACC="python benchmarks/accuracy.py --device cuda --mask-seen --no-write --set train.compile=true --set train.batch_size=256"
( export CUDA_VISIBLE_DEVICES=1
  taskset -c 0-15 timeout $LIMIT $ACC --work gpu/t --datasets games --variants text_ce --seeds 0,1,2 --jobs 3 >> $OUT/games_text.log 2>&1 &
  taskset -c 0-15 timeout $LIMIT $ACC --work gpu/t --datasets beauty --variants text_ce --seeds 1,2 --jobs 2 >> $OUT/beauty_text.log 2>&1
  wait ) &
export CUDA_VISIBLE_DEVICES=0
P="taskset -c 16-31"
if [ "${KERNEL:-1}" = 1 ]; then
$P timeout 150 python -m pytest -q -p no:cacheprovider -m gpu tests/model/test_short_attention.py \
  tests/model/test_model_compile_gpu.py > $OUT/gpu_tests.log 2>&1; tail -3 $OUT/gpu_tests.log
MF="$P timeout 60 python benchmarks/model_forward.py --device cuda --only attention --dropout 0 --steps 30"
{ $MF --size xl --batch 2048 --n-heads 8; $MF --size xl --batch 2048; $MF --size paper-1M --batch 16384; } > $OUT/micro.jsonl 2>&1
grep -h '"ms"\|ratio' $OUT/micro.jsonl | grep -v math | cut -c1-200
TP="$P timeout 100 python benchmarks/train_throughput.py --device cuda --steps 20 --sizes xl --skip-paper"
NB="model.dropout=0 model.bias=false"
$TP --batches 2048 --set $NB model.n_heads=8 > $OUT/tp.jsonl 2>/tmp/tp.err
$TP --batches 2048 --set $NB model.n_heads=8 model.attention=sdpa >> $OUT/tp.jsonl 2>>/tmp/tp.err
$TP --batches 2048 --set $NB >> $OUT/tp.jsonl 2>>/tmp/tp.err
$TP --batches 4096 --set $NB model.n_heads=8 >> $OUT/tp.jsonl 2>>/tmp/tp.err
$TP --batches 2048 --set model.dropout=0 model.n_heads=8 >> $OUT/tp.jsonl 2>>/tmp/tp.err
grep -h '"kind": "ours"' $OUT/tp.jsonl | python3 -c "
import sys, json
for l in sys.stdin:
    d = json.loads(l); print(d['batch'], {k: v for k, v in d.items() if k in ('targets_per_s', 'mfu', 'peak_mem_gib')})"
grep -i "error\|graph break" /tmp/tp.err | sort | uniq -c | head -5
$P timeout $(left 480) python benchmarks/profile_train.py --device cuda --size xl --batch 2048 --compile \
  --set $NB model.n_heads=8 > $OUT/prof.txt 2>&1
grep profile_train $OUT/prof.txt | cut -c1-600; grep "%" $OUT/prof.txt | head -14 | cut -c1-150
fi
wait
for f in $OUT/*_text.log; do grep -h '"event": "\(run\|summary\|error\)"' $f | cut -c1-420; done
for d in gpu/t/runs/*; do echo "$d $(grep -o '"valid/ndcg@10": [0-9.]*' $d/metrics.jsonl 2>/dev/null | sort -t: -k2 -g | tail -1) evals=$(grep -c valid/ndcg $d/metrics.jsonl 2>/dev/null) final=$(test -f $d/final.json && echo y)"; done
tar czf $OUT/t_runs.tgz gpu/t/runs && ls -la $OUT/t_runs.tgz
