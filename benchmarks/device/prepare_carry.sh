#!/usr/bin/env bash
# The inputs the device scripts carry, rebuilt on the CPU from ../shared/data. They live in ignored
# paths (gpu/, runs/), so a fresh checkout has none of them: on 2026-12-05 a new checkout arrived without
# the prepared data, the transfer study's cells and its pretrained checkpoint of the day before. The GPU
# image has no polars, so this runs here, before the session's first device call (10 s, or 45 s with
# TRANSFER=1, on the 2-core VM on 2026-12-05).
#
#   bash benchmarks/device/prepare_carry.sh                 # gpu/acc_ctrl (Beauty), gpu/acc_more (Games, Yelp, Sports, Beauty, Office)
#   TRANSFER=1 bash benchmarks/device/prepare_carry.sh      # + runs/transfer_v2 (datasets, corpora, fractions,
#                                                           #   token tables, layout.json)
#   POOLED=1 bash benchmarks/device/prepare_carry.sh        # + gpu/pooled (the pooled corpus, no subsets, 7.5 MB)
#
# What each serves:
#   gpu/acc_ctrl/data/beauty       packing_diag_call.sh (its arms and the gradient probe; tokens are built there)
#   gpu/acc_more/{data,tokens}     accuracy_more_call.sh (Games, Yelp and Sports rows; Beauty for the ID re-selection;
#                                  Office for its text selection). With the tracked tree at ~41 MB, carry only the
#                                  datasets a call needs (gpu/acc_more/data/NAME, gpu/acc_more/tokens/NAME): all of
#                                  gpu/acc_more (~28 MB) no longer fits the 64-MiB limit.
#   runs/transfer_v2/...           transfer_v2_call.sh (carry list in docs/results/transfer_v2/README.md)
#   gpu/pooled                     pooled_v3_call.sh (the token table is built on the device)
# Results that come back from the device belong under docs/results (committed), not here: what is only
# in gpu/ or runs/ is lost with the checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python}
PYTHONPATH=$PWD/src:$PWD/benchmarks $PY - <<'PY'
from pathlib import Path

import accuracy as A

for work, datasets, tokens in (("gpu/acc_ctrl", ("beauty",), False), ("gpu/acc_more", ("games", "yelp", "sports", "beauty", "office"), True)):
    w = Path(work)
    for name in datasets:
        data = A.prepare_dataset(name, w)
        if tokens:
            A.token_table(name, data, w)
        print(f"{work}: {name} ready ({data})")
PY
if [ -n "${TRANSFER:-}" ]; then
  PYTHONPATH=$PWD/src $PY benchmarks/transfer_v2.py --prepare-only --work runs/transfer_v2
fi
if [ -n "${POOLED:-}" ] && [ ! -f gpu/pooled/card.json ]; then
  PYTHONPATH=$PWD/src $PY -m scalerec data prepare --config configs/data/pooled.toml --out gpu/pooled --set 'subsets=[]'
fi
du -sh gpu/acc_ctrl gpu/acc_more ${TRANSFER:+runs/transfer_v2} ${POOLED:+gpu/pooled}
