"""The transfer study v2 (issue 20): does pretraining on a pooled multi-domain corpus pay off on a
held-out domain, at which target-data fraction, for which model size and strategy?

One grid, written as data (`StudySpec`, `configs/transfer/study/v2.toml`), expanded into cells
(`cells.py`), costed by analytic FLOPs before anything runs (`plan.py`), run one cell at a time with
every finished cell kept and skipped on a rerun (`execute.py`, `store.py`), and summarised as a table,
plots and a stated finding (`table.py`). The corpora it reads are built by `corpora.py`
(leave-one-domain-out pretraining corpora, nested target fractions). `benchmarks/transfer_v2.py` is
the command line.

It lives in the library rather than in benchmarks/ because its pure parts (corpus filtering, the
cell grid, selection on validation, the FLOPs plan) are what the tests check, and a sweep runner
with these properties is a reusable noun like `scalerec.scaling.sweep`.
"""
