"""Pack a sweep directory small enough for the device tool's return limit, keeping it resumable.

Why: a device call returns at most 64 MiB in 8 files, and a sweep cut by the call's timeout must resume in
the next call without retraining what finished. The tarball holds complete jobs (trunk + every branch done)
without their *.pt files (optimizer state, branch snapshots) and model weights (unless --keep-weights), and
leaves incomplete jobs out: their state is too large to carry, so on another machine they train again.

With --carry-cut MB, cut jobs ride along whole (state.pt, cooldown snapshots, weights), smallest first, as
long as they total at most MB megabytes: a fresh machine then resumes them instead of training them again.
Why: a session's last call cuts up to one job per worker, and each lost job is minutes of the card; world_v6's
smallest trunks carry a few MB each, its `m` jobs (~80 MB) cannot ride. A call returns files of at most 16 MiB
and the tarball must travel back in beside the working tree: if the cut jobs push it over MAX_TGZ_BYTES it is
packed again without them.

Run dirs this plan does not name (runs of the same spec under other overrides, e.g. a compile mode a probe
then rejected: the mode is in the run id) stay out too and are counted: carried along they would take the
room that cut jobs of this plan need, and nothing in this plan resumes them.

The sweep directory itself is not touched. Until 2026-12-07 this script made the tarball by deleting those
files in place, which also deleted, on the machine, the state.pt of every job the call's timeout had cut:
a call chained on the same warm machine then retrained those jobs from scratch instead of resuming them,
so a job longer than one call (world_v6's trunks, about 16 minutes at world_v5's rate) could never finish.

    python benchmarks/device/pack_sweep.py SPEC RUNS_DIR OUT.tgz [key=value ...] [--keep-weights]
        [--carry-cut MB]
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from scalerec.scaling.spec import load_spec, plan_runs  # noqa: E402
from scalerec.scaling.sweep import jobs_of, prepare_world, run_status  # noqa: E402

TRACKING_DIR = "mlruns"
"""The MLflow file store the sweep's runs share (`<sweep>/runs/mlruns`): never carried, and not a run."""

MAX_TGZ_BYTES = 15 << 20
"""A device call returns files of at most 16 MiB (a larger one is left out whole), and the tarball must also
travel back in with a working tree of ~48 MiB under the 64 MiB limit: keep a margin below both."""


def _dir_bytes(run_dir: Path) -> int:
    return sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file() and TRACKING_DIR not in f.parts)


def carried_cut_jobs(out: Path, cut: list[list], budget_bytes: float) -> list[list]:
    """The cut jobs that ride whole within `budget_bytes`, smallest first. A job none of whose runs holds a
    state.pt has nothing to resume and stays out: a run killed before its first state (config.toml and
    metrics only) trains again from scratch wherever it lands (seen carried on the CPU, 2026-12-07)."""
    sized = []
    for job in cut:
        dirs = [out / "runs" / r.run_id for r in job if (out / "runs" / r.run_id).is_dir()]
        if any((d / "state.pt").is_file() for d in dirs):
            sized.append((sum(_dir_bytes(d) for d in dirs), job))
    chosen, total = [], 0
    for n, job in sorted(sized, key=lambda x: x[0]):
        if total + n <= budget_bytes:
            chosen.append(job)
            total += n
    return chosen


def main(argv: list[str]) -> int:
    keep_weights = "--keep-weights" in argv
    args = [a for a in argv if a != "--keep-weights"]
    carry_mb = 0.0
    if "--carry-cut" in args:
        i = args.index("--carry-cut")
        carry_mb = float(args[i + 1])
        del args[i : i + 2]
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    spec_path, out, tgz = args[0], Path(args[1]), args[2]
    overrides = args[3:]
    spec = load_spec(spec_path, overrides=overrides) if overrides else load_spec(spec_path)
    prepare_world(spec, out)  # a [world] spec: run ids depend on the world's dataset and token paths
    runs = plan_runs(spec, out)
    n_done = n_drop = 0
    dropped_suffixes = {".pt"} if keep_weights else {".pt", ".safetensors"}
    left_out: set[str] = set()  # run ids whose whole dir stays out of the tarball
    stripped: set[str] = set()  # run ids packed without their state and weights
    cut = []
    for job in jobs_of(runs):
        if all(run_status(out, r) == "done" for r in job):
            n_done += 1
            stripped.update(r.run_id for r in job)
        else:
            cut.append(job)
    planned_ids = {r.run_id for r in runs}
    runs_dir = out / "runs"
    dirs = [d for d in runs_dir.iterdir() if d.is_dir()] if runs_dir.is_dir() else []
    foreign = {d.name for d in dirs if d.name not in planned_ids and d.name != TRACKING_DIR}
    left_out.update(foreign)
    carried = carried_cut_jobs(out, cut, carry_mb * 1e6) if carry_mb > 0 else []
    riding = {r.run_id for job in carried for r in job}
    for job in cut:
        if not any(r.run_id in riding for r in job):
            n_drop += 1
            left_out.update(r.run_id for r in job)

    def keep(ti: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(ti.name).parts  # <sweep>/runs/<run_id>/...
        if TRACKING_DIR in ti.name:
            return None
        if len(parts) >= 3 and parts[1] == "runs":
            if parts[2] in left_out:
                return None
            if parts[2] in stripped and ti.isfile() and Path(ti.name).suffix in dropped_suffixes:
                return None
        return ti

    tmp = Path(f"{tgz}.tmp")

    def pack() -> int:  # `keep` reads left_out as it is now
        with tarfile.open(tmp, "w:gz") as tf:
            tf.add(out, arcname=out.name, filter=keep)
        return tmp.stat().st_size

    if pack() > MAX_TGZ_BYTES and carried:  # the device would drop the file, finished runs too
        print(f"tarball over {MAX_TGZ_BYTES >> 20} MiB with {len(carried)} cut jobs: packing without them")
        for job in carried:
            n_drop += 1
            left_out.update(r.run_id for r in job)
        carried = []
        pack()
    print(f"jobs complete {n_done}, cut but carried {len(carried)}, left out {n_drop} (kept on this machine)")
    if foreign:
        print(f"{len(foreign)} run dirs outside this plan left out (kept on this machine): {sorted(foreign)}")
    if tmp.stat().st_size > MAX_TGZ_BYTES:
        size_mib = tmp.stat().st_size >> 20
        print(f"warning: {tgz} is {size_mib} MiB, over the {MAX_TGZ_BYTES >> 20} MiB a call can return")
    tmp.replace(tgz)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
