"""Negative samplers that never return one of the user's training positives.

Both samplers are vectorized rejection samplers: draw for the whole batch, then redraw only
the draws that hit a positive. With sparse data one or two rounds suffice.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from sgdl_wrap.data.interactions import Interactions

__all__ = ["NegativeSampler", "UniformNegativeSampler", "PopularityNegativeSampler"]

_MAX_ROUNDS = 1000


class NegativeSampler(Protocol):
    def sample(
        self, users: npt.NDArray[np.int64], k: int, generator: np.random.Generator
    ) -> npt.NDArray[np.int64]:
        """``[B]`` user ids -> ``[B, k]`` item ids, none of them a positive of its user."""
        ...


class _RejectionSampler:
    def __init__(self, positives: Interactions, weights: npt.NDArray[np.float64]) -> None:
        self.positives = positives
        total = float(weights.sum())
        if total <= 0:
            raise ValueError("sampling weights are all zero: no item can be drawn")
        self._cdf = np.cumsum(weights / total)
        positive_mass = np.bincount(
            positives.users, weights=weights[positives.items], minlength=positives.n_users
        )
        self._has_negative = positive_mass < total * (1 - 1e-9)

    def _draw(self, size: int, generator: np.random.Generator) -> npt.NDArray[np.int64]:
        drawn = np.searchsorted(self._cdf, generator.random(size) * self._cdf[-1], side="right")
        return np.minimum(drawn, self._cdf.size - 1).astype(np.int64)

    def sample(
        self, users: npt.NDArray[np.int64], k: int, generator: np.random.Generator
    ) -> npt.NDArray[np.int64]:
        users = np.asarray(users, dtype=np.int64)
        if users.ndim != 1:
            raise ValueError(f"users must be one-dimensional, got shape {users.shape}")
        if k < 0:
            raise ValueError(f"number of negatives must be >= 0, got {k}")
        if users.size and (users.min() < 0 or users.max() >= self.positives.n_users):
            bad = users[(users < 0) | (users >= self.positives.n_users)][0]
            raise ValueError(f"user id {bad} is out of range [0, {self.positives.n_users})")
        stuck = users[~self._has_negative[users]]
        if k and stuck.size:
            raise ValueError(f"user {stuck[0]} has no item left to sample as a negative")
        flat_users = np.repeat(users, k)
        result = self._draw(flat_users.size, generator)
        pending = np.flatnonzero(self.positives.contains(flat_users, result))
        for _ in range(_MAX_ROUNDS):
            if pending.size == 0:
                return result.reshape(users.size, k)
            result[pending] = self._draw(pending.size, generator)
            pending = pending[self.positives.contains(flat_users[pending], result[pending])]
        raise RuntimeError(
            f"negative sampling did not converge after {_MAX_ROUNDS} rounds "
            f"({pending.size} draws still hit positives)"
        )


class UniformNegativeSampler(_RejectionSampler):
    """Negatives drawn uniformly from the items that are not the user's training positives."""

    def __init__(self, positives: Interactions) -> None:
        super().__init__(positives, np.ones(positives.n_items))


class PopularityNegativeSampler(_RejectionSampler):
    """Negatives drawn with probability proportional to item popularity (WBPR).

    Popularity is the number of interactions of the item in ``positives``; items nobody
    interacted with are never drawn.
    """

    def __init__(self, positives: Interactions) -> None:
        super().__init__(positives, positives.item_counts.astype(np.float64))
