"""Paired significance over seeds: is SGDL's improvement over a baseline real?

Runs with the same seed share the data order and the initialisation draws, so the test is
paired: a one-sided paired t-test on the per-seed differences (the paper's dagger marks
``p < 0.05``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["ALPHA", "PairedDifference", "paired_difference", "paired_improvement_p", "paired_run_p"]

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

    Runs are the records of ``sgdl_wrap.benchmarks.running.runner.run``; they are paired by seed.
    """
    treatment = {r["config"]["seed"]: r["test"][metric] for r in treatment_runs}
    baseline = {r["config"]["seed"]: r["test"][metric] for r in baseline_runs}
    seeds = sorted(set(treatment) & set(baseline))
    p = paired_improvement_p([treatment[s] for s in seeds], [baseline[s] for s in seeds])
    return seeds, p


@dataclass(frozen=True)
class PairedDifference:
    """Treatment minus baseline over the seeds both ran: the mean difference, the one-sided
    p that the treatment is better and the two-sided p that they differ (NaN with fewer
    than two seeds)."""

    seeds: list[int]
    mean: float
    p_better: float
    p_two_sided: float


def paired_difference(
    treatment_runs: Sequence[dict[str, Any]], baseline_runs: Sequence[dict[str, Any]],
    metric: str,
) -> PairedDifference:
    """:class:`PairedDifference` of the test ``metric`` of two sets of runs, paired by seed."""
    seeds, p_better = paired_run_p(treatment_runs, baseline_runs, metric)
    treatment = {r["config"]["seed"]: r["test"][metric] for r in treatment_runs}
    baseline = {r["config"]["seed"]: r["test"][metric] for r in baseline_runs}
    differences = np.array([treatment[s] - baseline[s] for s in seeds])
    mean = float(differences.mean()) if seeds else float("nan")
    if len(seeds) < 2:
        p_two_sided = float("nan")
    elif np.ptp(differences) == 0:
        p_two_sided = 0.0 if differences[0] != 0 else 1.0
    else:
        p_two_sided = float(stats.ttest_1samp(differences, 0.0).pvalue)
    return PairedDifference(seeds, mean, p_better, p_two_sided)
