"""What each epoch of SGDL measured: the memorized share, the noise-rate estimate and, when
the training data carries ground-truth noisy flags, how well the memorized set and the
learned weights separate clean from noisy interactions (the paper's Figs. 1, 3 and 5)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["EpochReport", "EpochWeights", "epoch_report", "warn_if_loss_rises"]

log = logging.getLogger(__name__)

# Phase II warns when the unweighted training loss exceeds its value at the switch by this.
_LOSS_RISE_WARNING = 1.1


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


def warn_if_loss_rises(reports: Sequence[EpochReport]) -> None:
    """Warn once when the unweighted training loss of the last report crosses 1.1 times its
    value at the switch (the last Phase I report)."""
    # Measured on ML-100K (benchmarks/results/studies/phase2_dynamics_ml100k.md): the weighting
    # net can learn to ignore high-loss rows, whose loss then grows epoch after epoch
    # while the weighted objective falls, and validation accuracy drops; a 100x smaller
    # meta_lr avoided it there (studies/phase2_dynamics_ml100k_meta-lr-5e-6.md).
    phase_one = [r.train_loss for r in reports if r.phase == "memorization"]
    if not phase_one:
        return
    at_switch = phase_one[-1]
    limit = _LOSS_RISE_WARNING * at_switch
    phase_two = [r.train_loss for r in reports if r.phase == "self_guided"]
    report = reports[-1]
    # Once per crossing, not every epoch above it: a collapsed run can stay above for
    # hundreds of epochs, and each epoch's loss is in its logged report anyway.
    crossed = len(phase_two) < 2 or phase_two[-2] <= limit
    if report.train_loss > limit and crossed:
        log.warning(
            "SGDL epoch %d: the unweighted training loss rose from %.4f at the switch to "
            "%.4f; the weighting net is giving up on high-loss rows (consider a smaller "
            "meta_lr, e.g. 100x, or keep the best checkpoint by validation)",
            report.epoch, at_switch, report.train_loss,
        )


class EpochWeights:
    """Each training row's mean weight in the current epoch, and its mean loss as the
    weighting net saw it (the x-axis of weight-against-loss plots), over the steps that
    drew it.

    Args:
        n_rows: ``N``, the number of training rows.
    """

    def __init__(self, n_rows: int) -> None:
        self.weight_sum = np.zeros(n_rows)
        self.loss_sum = np.zeros(n_rows)
        self.count = np.zeros(n_rows, dtype=np.int64)

    def record(self, rows: np.ndarray, weights: np.ndarray, losses: np.ndarray) -> None:
        """Add one step's ``[B]`` weights and losses of the training ``rows`` ``[B]``."""
        self.weight_sum[rows] += weights
        self.loss_sum[rows] += losses
        self.count[rows] += 1

    def weights(self) -> np.ndarray:
        """``[N]`` mean weight per row (NaN where unseen)."""
        return self._mean(self.weight_sum)

    def losses(self) -> np.ndarray:
        """``[N]`` mean loss per row (NaN where unseen)."""
        return self._mean(self.loss_sum)

    def clear(self) -> None:
        self.weight_sum[:] = 0.0
        self.loss_sum[:] = 0.0
        self.count[:] = 0

    def _mean(self, total: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, total / self.count, np.nan)

    def state_dict(self) -> dict[str, Any]:
        return {"weight_sum": self.weight_sum.copy(), "weighed_loss_sum": self.loss_sum.copy(),
                "weight_count": self.count.copy()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.weight_sum = np.array(state["weight_sum"], dtype=np.float64)
        self.loss_sum = np.array(state["weighed_loss_sum"], dtype=np.float64)
        self.count = np.array(state["weight_count"], dtype=np.int64)
