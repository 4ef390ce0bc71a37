#!/usr/bin/env bash
# One device call, two jobs side by side on one H200 (about 9.5 minutes; rerun the same command on the warm
# machine to continue both: cut transfer cells and killed training runs resume):
# - issue 20: the Beauty 100% cells left unsettled (full LR 3e-3 seeds 1-2, scratch seed 0), 3 on the card;
# - issue 24 item 1: the same-run accuracy control, Beauty text model, 3 packed + 3 padded seeds (one
#   commit, one machine, compile on in both arms).
# Carry (prepared on the CPU; see docs/results/transfer_v2/h200_beauty/README.md "Next calls"):
#   runs/transfer_v2/{layout.json,data/beauty,corpus/beauty/card.json,fractions/beauty,tokens/corpus_beauty}
#   gpu/transfer_pre.tgz.aa gpu/transfer_cells.tgz (JSON rows only) gpu/acc_ctrl (accuracy.py's Beauty data dir)
#
#   OUT=$OUT LIM=555 bash benchmarks/device/bundle_transfer_packing_call.sh
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/call_a_out}; mkdir -p "$OUT"
LIM=${LIM:-560}
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; git log -1 --format=%H; date -u; nproc; } > "$OUT/env.txt"
(OUT=$OUT/tr LIMIT_S=$LIM TARGETS="['beauty']" CAP=9 JOBS=3 BUDGET_MIN=1 PACK=none \
  EXTRA_SETS="--set sizes=['s'] --set pretrain_lrs_per_size={s=[1e-3,3e-3,1e-2]}" \
  bash benchmarks/device/transfer_v2_call.sh > "$OUT/tr.txt" 2>&1) &
for arm in packed:on padded:off; do
  w=runs/acc_${arm%%:*}
  if [ ! -d "$w/data" ]; then mkdir -p "$w" && cp -r gpu/acc_ctrl/data "$w/"; fi
  (OMP_NUM_THREADS=2 PYTHONPATH=$PWD/src:$PWD/benchmarks timeout "$LIM" python benchmarks/accuracy.py --device cuda \
    --mask-seen --set train.compile=true --set train.packing=${arm##*:} --work "$w" --datasets beauty \
    --variants text_ce --seeds 0,1,2 --jobs 3 >> "$OUT/${arm%%:*}.jsonl" 2>&1; echo "rc=$?" >> "$OUT/${arm%%:*}.jsonl") &
done
wait
tar czf "$OUT/acc_runs.tgz" runs/acc_*/runs/*/final.json runs/acc_*/runs/*/metrics.jsonl runs/acc_*/accuracy.json 2>/dev/null
mv "$OUT"/tr/* "$OUT"/ 2>/dev/null; rmdir "$OUT/tr"
uptime >> "$OUT/env.txt"; ls -la "$OUT"
tail -3 "$OUT/tr.txt"; grep -h '"event": "run"\|test_ndcg\|rc=' "$OUT"/packed.jsonl "$OUT"/padded.jsonl | tail -12
