"""What each epoch of SGDL measured: the memorized share, the noise-rate estimate and, when
the training data carries ground-truth noisy flags, how well the memorized set and the
learned weights separate clean from noisy interactions (the paper's Figs. 1, 3 and 5)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["EpochReport", "epoch_report"]


@dataclass(frozen=True)
class EpochReport:
    """What :meth:`SGDLWrapper.end_epoch` measured (ground-truth fields are None when the
    training data carries no noisy flags; weight fields are None outside Phase II).

    Attributes:
        epoch: the epoch that just ended (0-based).
        phase: the phase that epoch was trained in.
        switched: whether Phase II starts with the next epoch.
        memory_ratio: ``|M_t| / |D|``, the share of memorized training interactions.
        noise_rate: the mixture's noise-rate estimate ``sigma``.
        clean_ratio: ``1 - sigma``.
        train_loss: mean unweighted per-sample loss over the training rows at the end of
            the epoch (the memorization pass's losses). In Phase II it can rise while the
            weighted objective falls: the weighting net then gives up on high-loss rows.
        memorization_precision: share of memorized rows that are clean (``MP_t``).
        memorization_recall: share of clean rows that are memorized (``MR_t``).
        memory_rate_clean, memory_rate_noisy: share of clean / noisy rows memorized.
        weight_clean, weight_noisy: mean learned weight of clean / noisy rows this epoch.
    """

    epoch: int
    phase: str
    switched: bool
    memory_ratio: float
    noise_rate: float
    clean_ratio: float
    train_loss: float
    memorization_precision: float | None = None
    memorization_recall: float | None = None
    memory_rate_clean: float | None = None
    memory_rate_noisy: float | None = None
    weight_clean: float | None = None
    weight_noisy: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def epoch_report(
    *,
    epoch: int,
    phase: str,
    switched: bool,
    memorized: np.ndarray,
    noise_rate: float,
    train_loss: float,
    noisy: np.ndarray | None,
    weights: np.ndarray | None,
) -> EpochReport:
    """The report of one epoch.

    Args:
        memorized: ``[N]`` bool, the rows memorized after the epoch.
        noisy: ``[N]`` bool ground-truth flags, or None.
        weights: ``[N]`` mean learned weight of each row this epoch (NaN if unseen), or None
            when no weighting net trained.
    """
    extra: dict[str, float | None] = {}
    if noisy is not None:
        clean = ~noisy
        hits = int((memorized & clean).sum())
        extra["memorization_precision"] = hits / max(int(memorized.sum()), 1)
        extra["memorization_recall"] = hits / max(int(clean.sum()), 1)
        extra["memory_rate_clean"] = _mean_or_none(memorized[clean])
        extra["memory_rate_noisy"] = _mean_or_none(memorized[noisy])
        if weights is not None:
            seen = ~np.isnan(weights)
            extra["weight_clean"] = _mean_or_none(weights[seen & clean])
            extra["weight_noisy"] = _mean_or_none(weights[seen & noisy])
    return EpochReport(
        epoch=epoch, phase=phase, switched=switched, memory_ratio=float(memorized.mean()),
        noise_rate=noise_rate, clean_ratio=1.0 - noise_rate, train_loss=train_loss, **extra,
    )


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None
