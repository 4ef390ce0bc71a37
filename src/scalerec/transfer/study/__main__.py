"""Child process of `runner.run_study(jobs > 1)`: run one cell given `<work> <cell JSON>`."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from scalerec.transfer.study.cells import Cell
from scalerec.transfer.study.execute import run_cell
from scalerec.transfer.study.runner import load_context, log_error
from scalerec.transfer.study.store import Store, choices


def main(argv: list[str]) -> int:
    work, cell = Path(argv[0]), Cell(**json.loads(argv[1]))
    ctx = load_context(work)
    store = Store(work)
    ctx.chosen = choices(store.rows())
    try:
        run_cell(cell, ctx, store)
    except Exception:
        log_error(work, cell, traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
