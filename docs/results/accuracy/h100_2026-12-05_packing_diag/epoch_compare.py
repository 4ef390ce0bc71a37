"""Every logged Beauty text-model run of the packing diagnosis, compared per *epoch* window.

Steps are not comparable across layouts (a packed step holds 750 targets, a padded one 128 windows), and
a run's best validation figure depends on where patience stopped it, so this lines the runs up by epoch:
the mean validation NDCG@10, training loss, pre-clip gradient norm and share of steps clipped inside each
20-epoch window (the last two only where the run logged them), a window shown only once the run has
reached its end. Run from the repository root:

    python docs/results/accuracy/h100_2026-12-05_packing_diag/epoch_compare.py
"""

from __future__ import annotations

import gzip
import json

import numpy as np

H200 = "docs/results/accuracy/h200_2026-12-05_packing_control"
H100 = "docs/results/accuracy/h100_2026-12-05_packing_diag"
RUNS = {  # label: metrics.jsonl.gz; bf16 autocast unless the label says fp32 (CPU: fp32, SDPA, eager)
    "H200 packed kernel c s0": f"{H200}/packed_s0.metrics.jsonl.gz",
    "H200 packed kernel c s1": f"{H200}/packed_s1.metrics.jsonl.gz",
    "H200 packed kernel c s2": f"{H200}/packed_s2.metrics.jsonl.gz",
    "H200 padded kernel c s0": f"{H200}/padded_s0.metrics.jsonl.gz",
    "H200 padded kernel c s1": f"{H200}/padded_s1.metrics.jsonl.gz",
    "H200 padded kernel c s2": f"{H200}/padded_s2.metrics.jsonl.gz",
    "CPU packed fp32 s0": f"{H200}/cpu_packed_s0.metrics.jsonl.gz",
    "H100 packed kernel c s0": f"{H100}/packed_short_s0.metrics.jsonl.gz",
    "H100 packed sdpa c s0": f"{H100}/packed_sdpa_s0.metrics.jsonl.gz",
    "H100 packed kernel e s0": f"{H100}/packed_eager_s0.metrics.jsonl.gz",
    "H100 padded kernel c s0": f"{H100}/padded_short_s0.metrics.jsonl.gz",
    "H100 packed fp32 e s0": f"{H100}/stage2_packed_fp32_s0.metrics.jsonl.gz",
    "H100 packed noclip e s0": f"{H100}/stage2_packed_noclip_s0.metrics.jsonl.gz",
    "H100 packed kernel e s0 (rerun)": f"{H100}/stage2_packed_eager_s0.metrics.jsonl.gz",
    "H100 padded kernel e s0": f"{H100}/stage2_padded_eager_s0.metrics.jsonl.gz",
    "H100 padded noclip e s0": f"{H100}/stage2_padded_noclip_s0.metrics.jsonl.gz",
    "H100 unpacked e s0": f"{H100}/stage2_unpacked_eager_s0.metrics.jsonl.gz",
    # stage 3: compiled, kernel, bf16 autocast with fp32 loss logits (train.logits_precision=fp32)
    "H100 packed f32logits c s0": f"{H100}/stage3_packed_f32logits_s0.metrics.jsonl.gz",
    "H100 packed f32logits c s1": f"{H100}/stage3_packed_f32logits_s1.metrics.jsonl.gz",
    "H100 packed f32logits c s2": f"{H100}/stage3_packed_f32logits_s2.metrics.jsonl.gz",
    "H100 padded f32logits c s0": f"{H100}/stage3_padded_short_s0.metrics.jsonl.gz",
    "H100 padded f32logits c s1": f"{H100}/stage3_padded_short_s1.metrics.jsonl.gz",
    "H100 padded f32logits c s2": f"{H100}/stage3_padded_short_s2.metrics.jsonl.gz",
    # stage 4: compiled, kernel; fp32 = train.precision=fp32 (TF32, SDPA), res32 = bf16 with an fp32 residual
    # stream (model.residual_bf16=false); both fp32 loss logits. One call: s0, s2 of each cut at 124-136
    "H100 packed fp32 c s0": f"{H100}/stage4_packed_fp32c_s0.metrics.jsonl.gz",
    "H100 packed fp32 c s1": f"{H100}/stage4_packed_fp32c_s1.metrics.jsonl.gz",
    "H100 packed fp32 c s2": f"{H100}/stage4_packed_fp32c_s2.metrics.jsonl.gz",
    "H100 packed res32 c s0": f"{H100}/stage4_packed_res32_s0.metrics.jsonl.gz",
    "H100 packed res32 c s1": f"{H100}/stage4_packed_res32_s1.metrics.jsonl.gz",
    "H100 packed res32 c s2": f"{H100}/stage4_packed_res32_s2.metrics.jsonl.gz",
    # stage 5 (one H200, 2026-12-06, one 480-s call, every run cut by it): z = train.z_loss=1e-4, packed;
    # padded = train.packing=off; both compiled, kernel, bf16 autocast with fp32 loss logits
    "H200 packed z c s0": f"{H100}/stage5_packed_z_s0.metrics.jsonl.gz",
    "H200 packed z c s1": f"{H100}/stage5_packed_z_s1.metrics.jsonl.gz",
    "H200 packed z c s2": f"{H100}/stage5_packed_z_s2.metrics.jsonl.gz",
    "H200 padded f32logits c s0": f"{H100}/stage5_padded_short_s0.metrics.jsonl.gz",
    "H200 padded f32logits c s1": f"{H100}/stage5_padded_short_s1.metrics.jsonl.gz",
    "H200 padded f32logits c s2": f"{H100}/stage5_padded_short_s2.metrics.jsonl.gz",
    # stage 5b (one H100, 2026-12-06, nineteenth session, three chained calls, every run finished): same arms
    "H100 packed z c s0": f"{H100}/stage5b_packed_z_s0.metrics.jsonl.gz",
    "H100 packed z c s1": f"{H100}/stage5b_packed_z_s1.metrics.jsonl.gz",
    "H100 packed z c s2": f"{H100}/stage5b_packed_z_s2.metrics.jsonl.gz",
    "H100 padded f32logits c s0 (5b)": f"{H100}/stage5b_padded_short_s0.metrics.jsonl.gz",
    "H100 padded f32logits c s1 (5b)": f"{H100}/stage5b_padded_short_s1.metrics.jsonl.gz",
    "H100 padded f32logits c s2 (5b)": f"{H100}/stage5b_padded_short_s2.metrics.jsonl.gz",
}
EDGES = list(range(0, 220, 20))
TABLES = (  # metrics.jsonl key, title
    ("valid/ndcg@10", "validation NDCG@10"),
    ("train/loss", "training loss"),
    ("train/grad_norm", "pre-clip gradient norm"),
    ("train/clipped", "share of steps clipped"),
    ("valid/logit_mean", "mean logit over the catalog (validation users; logged from stage 4 on)"),
    ("valid/user_norm", "mean user-vector norm (validation; from stage 4 on)"),
)


def read(path: str) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def series(rows: list[dict], key: str) -> np.ndarray:
    return np.array([(r["epoch"], r[key]) for r in rows if key in r])


def window_means(xy: np.ndarray) -> list[str]:
    cells = []
    for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True):
        inside = (xy[:, 0] > lo) & (xy[:, 0] <= hi)
        done = xy[-1, 0] >= hi - 1  # the run reached the window's end (evals fall ~1 epoch apart)
        cells.append(f"{xy[inside, 1].mean():.4f}" if done and inside.any() else "   -  ")
    return cells


def main() -> None:
    runs = {k: read(p) for k, p in RUNS.items()}
    head = " ".join(f"{lo:>3}-{hi:<3}" for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True))
    for key, title in TABLES:
        print(f"\n{title}, mean per epoch window; end = last epoch logged, best = best validation")
        print("run".ljust(32), head, "  end   best")
        for label, rows in runs.items():
            xy, va = series(rows, key), series(rows, "valid/ndcg@10")
            if not len(xy):
                continue
            print(label.ljust(32), " ".join(window_means(xy)), f"{xy[-1, 0]:6.1f} {va[:, 1].max():.4f}")


if __name__ == "__main__":
    main()
