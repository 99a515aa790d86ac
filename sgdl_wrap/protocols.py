"""The two contracts a user's code must satisfy: a scoring model and a per-sample loss.

A *sample* is one training interaction (a positive) together with the negatives sampled for
it. Losses work on scores only, so the library never needs to know a model's internals.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol, runtime_checkable

from torch import Tensor

__all__ = [
    "PerSampleLoss",
    "Recommender",
    "SupportsCandidateLosses",
    "SupportsScoringPass",
    "scoring_pass",
]


@runtime_checkable
class Recommender(Protocol):
    """A model that scores (user, item) pairs; implement it on a ``torch.nn.Module``.

    Parameters must be ordinary module parameters read at call time (nothing derived from
    them cached between calls, outside an optional :class:`SupportsScoringPass` context), so
    that ``torch.func.functional_call`` can swap them.
    """

    n_users: int
    n_items: int

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits for pairs.

        Args:
            users: ``[B]`` int64 user ids.
            items: ``[B]`` or ``[B, C]`` int64 item ids (``C`` candidates per user).

        Returns:
            ``[B]`` or ``[B, C]`` float logits, matching ``items``.
        """
        ...

    def score_all(self, users: Tensor) -> Tensor:
        """Logits of every item for each user: ``[B]`` -> ``[B, n_items]``."""
        ...


@runtime_checkable
class PerSampleLoss(Protocol):
    """A loss that returns one value per sample.

    ``scores[:, 0]`` are the positives' logits and ``scores[:, 1:]`` the logits of the
    ``num_negatives`` negatives sampled for each positive.
    """

    num_negatives: int

    def __call__(self, scores: Tensor) -> Tensor:
        """``[B, 1 + num_negatives]`` logits -> ``[B]`` per-sample losses."""
        ...


@runtime_checkable
class SupportsCandidateLosses(Protocol):
    """Optional for a pointwise loss: its per-sample loss is a sum of one term per candidate
    (the positive labelled 1, each negative labelled 0), so that each term, being a sample
    ``(u, i, y)`` of its own in the paper's pointwise setting, can get its own weight."""

    def candidate_losses(self, scores: Tensor) -> Tensor:
        """``[B, 1 + num_negatives]`` logits -> ``[B, 1 + num_negatives]`` losses whose row
        sums equal ``__call__(scores)``."""
        ...


@runtime_checkable
class SupportsScoringPass(Protocol):
    """Optional for a model whose scores share an expensive part (a graph model's final
    representations, one propagation over the whole graph): evaluation and the
    memorization test score in many chunks, and within this context the model may compute
    that part once."""

    def scoring_pass(self) -> AbstractContextManager[None]:
        """A context in which the caller does not change the parameters."""
        ...


def scoring_pass(model: object) -> AbstractContextManager[object]:
    """``model.scoring_pass()`` where the model offers one, else a context that does nothing."""
    return model.scoring_pass() if isinstance(model, SupportsScoringPass) else nullcontext()
