"""Measurements beside the paper's tables: speed, scale, per-sample agreement, propagation
kernels, Phase II dynamics, planted noise and the shape of one Phase II step. Each runs as
``python -m sgdl_wrap.benchmarks.studies.<name>``."""
