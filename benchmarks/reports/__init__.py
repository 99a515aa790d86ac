"""Turning runs into results: result files, the paper's numbers, significance tests, figures
and the verdict on the learned weights."""
