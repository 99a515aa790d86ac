"""T-CE and R-CE (Wang et al., WSDM 2021): denoising the pointwise BCE loss by its values.

Both see a batch as its pointwise terms: with ``[B, 1 + k]`` logits ``s`` (column 0 the
positive, the rest its sampled negatives), term ``(b, j)`` has label ``y = 1`` for ``j = 0``
and ``y = 0`` otherwise, and BCE ``softplus(-s)`` or ``softplus(s)``. They apply to models
trained with :class:`adapters.BCELoss` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from sgdl_wrap import Batch
from sgdl_wrap.adapters import BCELoss
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.trainers import Trainer
from sgdl_wrap.data.datasets import Dataset

__all__ = [
    "RCETrainer",
    "TCETrainer",
    "drop_rate",
    "pointwise_terms",
    "reweighted_loss",
    "truncated_loss",
]


def pointwise_terms(scores: Tensor) -> tuple[Tensor, Tensor]:
    """BCE terms and labels of ``[B, 1 + k]`` logits, both ``[B, 1 + k]``."""
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(scores, labels, reduction="none"), labels


def drop_rate(step: int, max_rate: float, num_gradual: int, exponent: float = 1.0) -> float:
    """T-CE's drop rate after ``step`` batches: ``max_rate**exponent * step / num_gradual``
    while ``step < num_gradual`` (the authors' linear ramp), then ``max_rate``."""
    if step >= num_gradual:
        return max_rate
    return max_rate**exponent * step / num_gradual


def truncated_loss(scores: Tensor, rate: float) -> tuple[Tensor, Tensor]:
    """T-CE: the mean BCE over the terms left after dropping the ``floor(rate * n)`` terms
    with the largest ``loss * label`` (``n = B * (1 + k)``; negatives rank as 0, so only
    large-loss positives are ever dropped).

    Returns the scalar loss and the ``[B, 1 + k]`` bool mask of kept terms.
    """
    terms, labels = pointwise_terms(scores)
    flat = (terms * labels).detach().flatten()
    remember = flat.numel() - math.floor(rate * flat.numel())
    kept = torch.zeros_like(flat, dtype=torch.bool)
    kept[torch.argsort(flat, stable=True)[:remember]] = True
    kept = kept.view_as(terms)
    return terms[kept].mean(), kept


def reweighted_loss(scores: Tensor, beta: float) -> tuple[Tensor, Tensor]:
    """R-CE: ``mean(w * BCE)`` with detached weights ``sigmoid(s)^beta`` for positives and
    ``(1 - sigmoid(s))^beta`` for negatives (small weights for the hard, likely noisy ones).

    Returns the scalar loss and the ``[B, 1 + k]`` weights.
    """
    terms, labels = pointwise_terms(scores)
    probability = torch.sigmoid(scores.detach())
    weights = torch.where(labels > 0, probability, 1.0 - probability).pow(beta)
    return (weights * terms).mean(), weights


def _require_bce(trainer: Trainer) -> None:
    if not isinstance(trainer.loss, BCELoss):
        raise ValueError(
            f"{trainer.name} denoises the pointwise BCE loss; model {trainer.config.model!r} "
            f"trains with {trainer.loss!r}"
        )


@dataclass(frozen=True)
class TCESettings:
    """``max_rate``: final drop rate; ``num_gradual``: batches to reach it; ``exponent``:
    of the authors' ramp."""

    max_rate: float = 0.2
    num_gradual: int = 30000
    exponent: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_rate < 1.0 or self.num_gradual <= 0 or self.exponent <= 0:
            raise ValueError(f"invalid T-CE settings {self}")


class TCETrainer(Trainer):
    """Truncated BCE: drop the largest-loss positives at a rate that grows with the global
    batch count."""

    name = "tce"
    Settings = TCESettings

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        super().__init__(data, config)
        _require_bce(self)
        self.step = 0
        self.last_rate = 0.0

    def batch_loss(self, batch: Batch, where: str) -> Tensor:
        s = self.settings
        self.last_rate = drop_rate(self.step, s.max_rate, s.num_gradual, s.exponent)
        self.step += 1
        scores = self.recommender.score(batch.users, batch.candidates)
        loss, _ = truncated_loss(scores, self.last_rate)
        return loss

    def diagnostics(self) -> dict[str, float]:
        return {"final_drop_rate": self.last_rate, "batches": self.step}


@dataclass(frozen=True)
class RCESettings:
    """``beta``: exponent of the weights (authors 0.2 to 0.3)."""

    beta: float = 0.2

    def __post_init__(self) -> None:
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")


class RCETrainer(Trainer):
    """Reweighted BCE: down-weight hard samples by the model's own confidence."""

    name = "rce"
    Settings = RCESettings

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        super().__init__(data, config)
        _require_bce(self)

    def batch_loss(self, batch: Batch, where: str) -> Tensor:
        loss, _ = reweighted_loss(self.recommender.score(batch.users, batch.candidates),
                                  self.settings.beta)
        return loss
