"""The data stage: raw public dumps (or the built-in synthetic ones) → clean dataset dirs.

Public entry points: `scalerec.data.build.prepare.prepare(PrepareConfig) -> card` (raw files → Parquet +
card + nested subsets), `scalerec.data.ingest.synthetic.synthesize(fmt, n, out_dir)` (seeded raw dumps
in every supported format), `scalerec.data.build.card.read_card(dir)`. Readers of each raw format are
in `sources.py` / `sources_bench.py`; `sequences.py` / `splits.py` turn a dataset dir into tensors.
"""
