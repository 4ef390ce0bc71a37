"""Shrink a sweep directory so it fits the device tool's return limit, keeping it resumable.

Why: a device call returns at most 64 MiB in 8 files, and a sweep cut by the call's timeout must resume in
the next call without retraining what finished. Complete jobs (trunk + every branch done) lose their
*.pt files (optimizer state, branch snapshots) and model weights unless --keep-weights; incomplete jobs
are removed whole (the next call retrains them from scratch, as the sweep runner would).

    python benchmarks/device/pack_sweep.py SPEC RUNS_DIR OUT.tgz [key=value ...] [--keep-weights]
"""

from __future__ import annotations

import shutil
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from scalerec.scaling.spec import load_spec, plan_runs  # noqa: E402
from scalerec.scaling.sweep import jobs_of, prepare_world, run_dir, run_status  # noqa: E402


def main(argv: list[str]) -> int:
    keep_weights = "--keep-weights" in argv
    args = [a for a in argv if a != "--keep-weights"]
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
    for job in jobs_of(runs):
        if all(run_status(out, r) == "done" for r in job):
            n_done += 1
            for r in job:
                for p in run_dir(out, r).rglob("*"):
                    if p.is_file() and p.suffix in dropped_suffixes:
                        p.unlink()
        else:
            n_drop += 1
            for r in job:
                shutil.rmtree(run_dir(out, r), ignore_errors=True)
    print(f"jobs complete {n_done}, dropped {n_drop}")
    tmp = Path(f"{tgz}.tmp")
    with tarfile.open(tmp, "w:gz") as tf:
        tf.add(out, arcname=out.name, filter=lambda ti: None if "mlruns" in ti.name else ti)
    tmp.replace(tgz)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
