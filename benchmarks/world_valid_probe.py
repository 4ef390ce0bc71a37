"""Score a trained world run at every position of its evaluation users' windows (CPU diagnostic).

Why it exists: world_v4's GPU call returned validation losses 0.3-1.7 nats above test losses that
were tight across seeds. Leave-one-out takes validation at 0-based position length-2 and test at
length-1, which fall in different slots of the world's session cycle. This script scores every
target t = 1 … length-1 of the eval users with one forward pass (the exact full-softmax CE over the
catalog, the loss `valid_loss` and the floor are defined for), groups the result by t mod session,
and prints beside it the numbers the trainer's own eval path (`eval.heldout.evaluate_split`) gives
for the validation and test splits — so a defect in the eval plumbing and a property of the world
can be told apart.

Usage: python benchmarks/world_valid_probe.py RUN_DIR [--dataset DIR] [--users N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def position_losses(model, seqs: np.ndarray, batch: int = 256) -> np.ndarray:
    """float64 [U, L-1]: exact CE of item t given items < t (t = 1 … L-1), one causal pass per row."""
    items = model.all_item_vectors().float()
    out = []
    with torch.no_grad():
        for i in range(0, len(seqs), batch):
            x = torch.as_tensor(seqs[i : i + batch, :-1], dtype=torch.int64)
            h = model(x).float()
            logits = h @ items.T
            logits[..., 0] = float("-inf")
            tgt = torch.as_tensor(seqs[i : i + batch, 1:], dtype=torch.int64)
            ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")
            out.append(ce.double().numpy())
    return np.concatenate(out)


def by_slot(loss: np.ndarray, floor: np.ndarray, session: int) -> list[dict]:
    """Mean loss and floor per t mod session (t = 1 … L-1)."""
    t = np.arange(1, loss.shape[1] + 1)
    rows = []
    for r in range(session):
        m = t % session == r
        rows.append({"t_mod": r, "positions": int(m.sum()), "loss": float(loss[:, m].mean()),
                     "floor": float(floor[:, m].mean())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--dataset", help="world dataset dir (default: the run's)")
    ap.add_argument("--users", type=int, default=2000)
    a = ap.parse_args()
    from scalerec.data.read.sequences import load_sequences
    from scalerec.data.read.splits import leave_one_out
    from scalerec.eval.heldout import evaluate_split
    from scalerec.rundir import load_run
    from scalerec.train.world_stream import read_world

    run = load_run(a.run_dir, tokens_dir=Path(a.dataset) / "tokens" if a.dataset else None)
    dataset = Path(a.dataset) if a.dataset else run.dataset_dir
    world, meta = read_world(dataset)
    c = world.cfg
    seqs = load_sequences(dataset)
    n = min(a.users, seqs.n_users)
    full = np.stack([seqs.items[seqs.offsets[u] : seqs.offsets[u + 1]] for u in range(n)]).astype(np.int64)
    full = full[:, -(run.model.cfg.max_len + 1):]  # the last max_len + 1 items: one full window
    loss = position_losses(run.model, full)
    floor = -world.bayes_logprob(full)
    split = leave_one_out(seqs)
    res: dict = {"run": str(a.run_dir), "world": meta["world"], "users": n}
    for name, (hist, tgt) in (("valid", split.valid), ("test", split.test)):
        rows = np.arange(n)
        m = evaluate_split(run.model, hist.take(rows), tgt[rows], run.model.cfg.max_len, [10], 256,
                           torch.device("cpu"), None)
        res[f"{name}_eval_path"] = {"loss": m["loss"], "ndcg@10": m["ndcg@10"],
                                    "history_len": int(hist.take(rows).lengths()[0])}
    width = full.shape[1] - 1
    sem = loss.std(0) / np.sqrt(len(loss))
    res["window_last_two"] = {"t=L-2 (valid target)": float(loss[:, width - 2].mean()),
                              "t=L-1 (test target)": float(loss[:, width - 1].mean()),
                              "standard_error": [float(sem[width - 2]), float(sem[width - 1])]}
    if c.session:
        res["by_t_mod_session"] = by_slot(loss, floor, c.session)
    res["floor_by_t_mean"] = float(floor.mean())
    res["by_t"] = [round(float(v), 4) for v in loss.mean(0)]
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
