"""Paired significance over seeds: is SGDL's improvement over a baseline real?

Runs with the same seed share the data order and the initialisation draws, so the test is
paired: a one-sided paired t-test on the per-seed differences (the paper's dagger marks
``p < 0.05``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["ALPHA", "paired_improvement_p", "paired_run_p"]

ALPHA = 0.05


def paired_improvement_p(treatment: Sequence[float], baseline: Sequence[float]) -> float:
    """p-value of the one-sided paired t-test that ``treatment`` exceeds ``baseline``.

    Both hold one value per seed, in the same seed order. With fewer than two pairs there is
    no test (returns NaN); identical differences give 0 when positive, else 1.
    """
    a, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two equal-length vectors of per-seed values, got {a.shape}, "
                         f"{b.shape}")
    if a.size < 2:
        return float("nan")
    differences = a - b
    if np.ptp(differences) == 0:
        return 0.0 if differences[0] > 0 else 1.0
    return float(stats.ttest_rel(a, b, alternative="greater").pvalue)


def paired_run_p(
    treatment_runs: Sequence[dict[str, Any]], baseline_runs: Sequence[dict[str, Any]],
    metric: str,
) -> tuple[list[int], float]:
    """The seeds two sets of runs share (sorted) and :func:`paired_improvement_p` of the
    treatment's test ``metric`` over the baseline's on them (NaN with fewer than two).

    Runs are the records of ``benchmarks.runner.run``; they are paired by seed.
    """
    treatment = {r["config"]["seed"]: r["test"][metric] for r in treatment_runs}
    baseline = {r["config"]["seed"]: r["test"][metric] for r in baseline_runs}
    seeds = sorted(set(treatment) & set(baseline))
    p = paired_improvement_p([treatment[s] for s in seeds], [baseline[s] for s in seeds])
    return seeds, p
