"""Per-sample BCE (pointwise) and BPR (pairwise) losses on ``[B, 1 + k]`` logits.

Column 0 of ``scores`` holds each positive's logit, the other ``k`` columns the logits of the
negatives sampled for it. Both return a ``[B]`` tensor: one loss per training interaction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BCELoss", "BPRLoss"]


def _check_scores(scores: Tensor, num_negatives: int, name: str) -> None:
    if scores.dim() != 2 or scores.shape[1] != 1 + num_negatives:
        raise ValueError(
            f"{name} expects scores of shape [B, {1 + num_negatives}] (positive + "
            f"{num_negatives} negatives), got {tuple(scores.shape)}"
        )


class BCELoss:
    """Pointwise binary cross-entropy: positive labelled 1, each sampled negative labelled 0.

    ``loss_b = softplus(-s_b0) + sum_j softplus(s_bj)``, i.e. the BCE of the positive plus
    the BCE of each of its negatives.
    """

    def __init__(self, num_negatives: int = 1) -> None:
        if num_negatives < 0:
            raise ValueError(f"num_negatives must be >= 0, got {num_negatives}")
        self.num_negatives = num_negatives

    def __call__(self, scores: Tensor) -> Tensor:
        _check_scores(scores, self.num_negatives, "BCELoss")
        return F.softplus(-scores[:, 0]) + F.softplus(scores[:, 1:]).sum(dim=1)

    def candidate_losses(self, scores: Tensor) -> Tensor:
        """``[B, 1 + k]``: the positive's BCE in column 0, each negative's after it."""
        _check_scores(scores, self.num_negatives, "BCELoss")
        return F.softplus(torch.cat([-scores[:, :1], scores[:, 1:]], dim=1))

    def __repr__(self) -> str:
        return f"BCELoss(num_negatives={self.num_negatives})"


class BPRLoss:
    """Bayesian personalised ranking: ``-log sigmoid(s_pos - s_neg)``, averaged over negatives."""

    def __init__(self, num_negatives: int = 1) -> None:
        if num_negatives < 1:
            raise ValueError(f"BPR needs at least one negative per positive, got {num_negatives}")
        self.num_negatives = num_negatives

    def __call__(self, scores: Tensor) -> Tensor:
        _check_scores(scores, self.num_negatives, "BPRLoss")
        return F.softplus(scores[:, 1:] - scores[:, :1]).mean(dim=1)

    def __repr__(self) -> str:
        return f"BPRLoss(num_negatives={self.num_negatives})"
