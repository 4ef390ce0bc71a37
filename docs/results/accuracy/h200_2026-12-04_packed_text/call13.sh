#!/usr/bin/env bash
# GPU call: issue 24 item 1 — the text model's packed-vs-padded accuracy check on Beauty (3 seeds, packed,
# alone on the GPU so it reaches its usual 174-200 epochs; the padded reference is the accuracy table's
# Beauty text row, 0.0560 [0.0536, 0.0584]). MAXMIN = train.max_minutes, CALL_S = the whole call.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $OUT/device.txt
python -c "import torch; print('torch', torch.__version__)" | tee -a $OUT/device.txt
git log -1 --format=%H | tee -a $OUT/device.txt
rm -rf gpu/w_bt; mkdir -p gpu/w_bt/data gpu/w_bt/tokens
cp -r gpu/acc/data/beauty gpu/w_bt/data/; cp -r gpu/acc/tokens/beauty gpu/w_bt/tokens/
timeout ${CALL_S:-450} python benchmarks/accuracy.py --device cuda --mask-seen --set train.compile=true --set train.packing=on \
  --set train.max_minutes=${MAXMIN:-6.0} --work gpu/w_bt --datasets beauty --variants text_ce --seeds 0,1,2 --jobs 3 \
  > $OUT/beauty_text_packed.jsonl 2> $OUT/beauty_text_packed.err
echo rc=$?
mkdir -p x; cp gpu/w_bt/accuracy.json x/ 2>/dev/null
for r in gpu/w_bt/runs/*; do cp $r/final.json x/$(basename $r).final.json 2>/dev/null; gzip -c $r/metrics.jsonl > x/$(basename $r).metrics.jsonl.gz 2>/dev/null; done
tar czf $OUT/runs.tgz x
grep -h '"event": "summary"\|child_failed\|"event": "error"' $OUT/*.jsonl | cut -c1-600
tail -n 3 $OUT/*.err
