"""Benchmarks that reproduce the SGDL paper; run ``python -m benchmarks --help``."""
