"""Evaluating a user's per-sample loss on a batch, with the checks every caller needs."""

from __future__ import annotations

import torch
from torch import Tensor

from sgdl_wrap.data.batching import Batch
from sgdl_wrap.protocols import PerSampleLoss, Recommender

__all__ = ["check_candidate_losses", "check_per_sample", "per_sample_losses"]


def check_per_sample(losses: Tensor, batch_size: int, *, where: str = "batch") -> Tensor:
    """Return ``losses`` if it is a finite ``[batch_size]`` tensor, else raise a clear error."""
    if not isinstance(losses, Tensor):
        raise TypeError(f"the loss must return a tensor, got {type(losses).__name__}")
    if losses.dim() == 0:
        raise ValueError(
            f"the loss returned a scalar ({float(losses.detach()):.4g}) for {where}; per-sample "
            f"losses of shape [{batch_size}] are needed (do not reduce with mean/sum)"
        )
    if tuple(losses.shape) != (batch_size,):
        raise ValueError(
            f"the loss returned shape {tuple(losses.shape)} for {where}; expected "
            f"[{batch_size}], one loss per sample"
        )
    _check_finite(losses, where)
    return losses


def check_candidate_losses(losses: Tensor, scores: Tensor, *, where: str = "batch") -> Tensor:
    """Return ``losses`` if it is finite and shaped like ``scores`` ``[B, 1 + k]``, else raise."""
    if not isinstance(losses, Tensor) or losses.shape != scores.shape:
        shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
        raise ValueError(
            f"candidate_losses returned {shape} for {where}; expected one loss per candidate, "
            f"shaped like the scores {tuple(scores.shape)}"
        )
    _check_finite(losses, where)
    return losses


def _check_finite(losses: Tensor, where: str) -> None:
    finite = torch.isfinite(losses)
    if not bool(finite.all()):
        bad = tuple(int(i) for i in (~finite).nonzero()[0])
        raise FloatingPointError(
            f"non-finite loss {float(losses[bad].detach())} at sample {bad[0]} of {where}"
        )


def per_sample_losses(
    model: Recommender, loss: PerSampleLoss, batch: Batch, *, where: str = "batch"
) -> Tensor:
    """``[B]`` losses of ``batch``: one ``score`` call on ``[B, 1 + k]`` candidates, then the loss.

    ``where`` names the batch in error messages (e.g. ``"epoch 3, batch 17"``).
    """
    if batch.negatives.shape[1] != loss.num_negatives:
        raise ValueError(
            f"the batch has {batch.negatives.shape[1]} negatives per sample but {loss!r} "
            f"expects {loss.num_negatives}"
        )
    scores = model.score(batch.users, batch.candidates)
    return check_per_sample(loss(scores), len(batch), where=where)
