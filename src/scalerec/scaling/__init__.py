"""Scaling stage: sweeps of model size × data size, scaling-law fits with CIs, and the report.

Public entry points (each behind one CLI command):
`scalerec.scaling.spec.load_spec(path) -> SweepSpec`, `scalerec.scaling.sweep.run_sweep(spec, out_dir,
parallel=1, dry_run=False) -> rows` (`scalerec sweep`), `scalerec.scaling.fits.fit(out_dir) -> dict`
writing `fits.json` (`scalerec fit`), `scalerec.scaling.report.report(out_dir) -> Path` writing
`report.html` (`scalerec report`). The fitting modules (`laws`, `optimal`, `fits`, `plots`,
`report`) read only `results.parquet` / `fits.json` and never import torch.
"""
