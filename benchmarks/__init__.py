"""Benchmarks that reproduce the SGDL paper; run ``python -m sgdl_wrap.benchmarks --help``."""
