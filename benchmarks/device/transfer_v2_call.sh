#!/usr/bin/env bash
# One device call of the transfer study v2 (issue 20; benchmarks/transfer_v2.py, configs/transfer/study/v2.toml).
# The same script serves every call: the runner skips finished cells, and a warm machine still holds the
# pretrained run dirs of the last call. The datasets come prepared from the CPU (`--prepare-only`, polars),
# carried as runs/transfer_v2/{layout.json,data/T,corpus/T,fractions/T,tokens/T,tokens/corpus_T}
# (`TRANSFER=1 bash benchmarks/device/prepare_carry.sh` builds them). Commit the cells' rows that come back
# (transfer_cells.tgz: cells/*.json) under docs/results/transfer_v2: runs/ and gpu/ do not outlive the checkout.
#
#   TARGETS="['beauty']" CAP=7.5 JOBS=21 bash benchmarks/device/transfer_v2_call.sh   # phase 1 (pretraining, baselines)
#   TARGETS="['beauty']" CAP=7.5 JOBS=24 bash benchmarks/device/transfer_v2_call.sh   # phases 2, 3 (same command)
#
# Back under $OUT: the cells (one JSON row + test ranks each, the study's state), the log, and the chosen
# pretrained checkpoints of sizes PACK (default "xs s"; weights, not optimizer state) split into 15 MiB parts,
# so a machine that went cold can be given them back (`gpu/transfer_pre.tgz.*`, carried; unpacked here).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src OMP_NUM_THREADS=1
OUT=${OUT:-/tmp/transfer_v2_out}
WORK=runs/transfer_v2
mkdir -p "$OUT" "$WORK"
{ nvidia-smi --query-gpu=name --format=csv,noheader; pwd; git log -1 --format=%H; } > "$OUT/device.txt"
if ls gpu/transfer_pre.tgz.* >/dev/null 2>&1 && ! ls -d "$WORK"/runs/pre-* >/dev/null 2>&1; then
  cat gpu/transfer_pre.tgz.* | tar xzf - -C "$WORK"
fi
if [ -f gpu/transfer_cells.tgz ] && [ ! -d "$WORK/cells" ]; then tar xzf gpu/transfer_cells.tgz -C "$WORK"; fi
ls -d "$WORK"/runs/pre-* 2>/dev/null | head -20
timeout "${LIMIT_S:-570}" python benchmarks/transfer_v2.py --work "$WORK" --device cuda --jobs "${JOBS:-21}" \
  --time-budget-min "${BUDGET_MIN:-5}" --set "targets=${TARGETS:-['beauty']}" --set "cell_max_minutes=${CAP:-7.5}" ${EXTRA_SETS:-} \
  > "$OUT/call.log" 2>&1
echo "study rc=$?"
grep -c '"event"' "$OUT/call.log"; grep -i 'error\|Traceback' "$OUT/call.log" | tail -5
(cd "$WORK" && tar czf "$OUT/transfer_cells.tgz" cells errors study.json 2>/dev/null)
python - "$WORK" "${PACK:-xs s}" <<'PY' > /tmp/pre_dirs.txt
import sys
from scalerec.transfer.study.store import Store, choices
rows = Store(sys.argv[1]).rows()
chosen = {c["cell"] for c in choices(rows).values()}
for r in rows:
    if r["kind"] == "pretrain" and r["cell"] in chosen and r["size"] in sys.argv[2].split():
        print(r["cell"])
PY
cat /tmp/pre_dirs.txt
if [ -s /tmp/pre_dirs.txt ]; then
  (cd "$WORK" && tar czf - $(sed 's|^|runs/|; s|$|/model.safetensors|' /tmp/pre_dirs.txt) \
     $(for d in $(cat /tmp/pre_dirs.txt); do ls runs/$d/*.json runs/$d/.verified.json runs/$d/config.toml runs/$d/metrics.jsonl 2>/dev/null; done) \
   | split -b 15M - "$OUT/transfer_pre.tgz.")
fi
gzip -9 "$OUT/call.log"; ls -la "$OUT"; uptime
