#!/usr/bin/env bash
# Batch 10 (session 3): GPU1 = Sports recipe sweep (issue 4); GPU0 = pooling/attention micro-benchmarks
# and train throughput with the spread-padding pooling and the bf16 residual option (issue 10).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
sweep() {  # name, variant, overrides...
  local name=$1 variant=$2; shift 2
  mkdir -p gpu/sw/$name && cp -r gpu/acc/data gpu/sw/$name/
  local sets=(); for o in "$@"; do sets+=(--set "$o"); done
  CUDA_VISIBLE_DEVICES=1 timeout 560 python benchmarks/accuracy.py --work gpu/sw/$name --datasets sports \
    --variants $variant --seeds 0 --device cuda --mask-seen --no-write --set train.compile=true "${sets[@]}" \
    > /tmp/sw_$name.log 2>&1 &
}
sweep base sasrec_ce
sweep d256 sasrec_ce model.d_model=256 model.d_ffn=1024 model.n_heads=4
sweep l3 sasrec_ce model.n_layers=3
sweep wd sasrec_ce train.weight_decay=0.1
sweep b256 sasrec_ce train.batch_size=256 train.lr=2e-3
sweep do3 sasrec_ce model.dropout=0.3
sweep lr5 sasrec_ce train.lr=5e-4
sweep ss sasrec_sampled model.d_model=128 model.d_ffn=512 model.n_heads=2
export CUDA_VISIBLE_DEVICES=0
{
python benchmarks/model_forward.py --device cuda --size paper-1M --only item_encoder --items 131072 --steps 10
for spec in "paper-1M 16384" "xl 2048"; do set -- $spec
  for d in 0.1 0.0; do python benchmarks/model_forward.py --device cuda --size $1 --batch $2 --only attention --dropout $d --steps 10; done
done
} > $OUT/micro.jsonl 2>> $OUT/err.log
TP="timeout 150 python benchmarks/train_throughput.py --device cuda --steps 12"
$TP --sizes paper-1M --batches 16384 8192 >> $OUT/tp.jsonl 2>> $OUT/err.log
$TP --sizes paper-1M --batches 16384 --skip-paper --set model.residual_bf16=true >> $OUT/tp.jsonl 2>> $OUT/err.log
$TP --sizes paper-1M --batches 16384 --skip-paper --set model.residual_bf16=true model.dropout=0 >> $OUT/tp.jsonl 2>> $OUT/err.log
$TP --sizes xl --batches 2048 --skip-paper --set model.dropout=0 >> $OUT/tp.jsonl 2>> $OUT/err.log
$TP --sizes xl --batches 2048 --skip-paper --set model.dropout=0 model.residual_bf16=true >> $OUT/tp.jsonl 2>> $OUT/err.log
cut -c1-400 $OUT/micro.jsonl; grep -h '"kind": "\(ours\|paper_mode\|summary\)"' $OUT/tp.jsonl | cut -c1-700
wait
for f in /tmp/sw_*.log; do echo "== $f"; grep -h '"event": "\(run\|summary\)"' $f | cut -c1-600; done > $OUT/sweep.log
for d in gpu/sw/*/runs/*; do echo "$d $(grep -o '"valid/ndcg@10": [0-9.]*' $d/metrics.jsonl 2>/dev/null | sort -t: -k2 -g | tail -1) steps=$(grep -c train/loss $d/metrics.jsonl 2>/dev/null)"; done >> $OUT/sweep.log
tail -5 /tmp/sw_base.log >> $OUT/sweep.log
cat $OUT/sweep.log | cut -c1-400
