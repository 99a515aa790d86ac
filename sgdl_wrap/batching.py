"""Mini-batches of training samples: rows of an :class:`Interactions` plus sampled negatives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sgdl_wrap.interactions import Interactions
from sgdl_wrap.sampling import NegativeSampler

__all__ = ["Batch", "iterate_batches"]


@dataclass(frozen=True)
class Batch:
    """One mini-batch of samples.

    Attributes:
        rows: ``[B]`` int64 indices of the training interactions in the batch.
        users: ``[B]`` int64 user ids.
        items: ``[B]`` int64 positive item ids.
        negatives: ``[B, k]`` int64 sampled negative item ids (``k`` may be 0).
    """

    rows: Tensor
    users: Tensor
    items: Tensor
    negatives: Tensor

    def __len__(self) -> int:
        return int(self.rows.numel())

    @property
    def candidates(self) -> Tensor:
        """``[B, 1 + k]`` item ids: the positive in column 0, then its negatives."""
        return torch.cat([self.items.unsqueeze(1), self.negatives], dim=1)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device) for t in (self.rows, self.users, self.items, self.negatives)))


def iterate_batches(
    train: Interactions,
    batch_size: int,
    sampler: NegativeSampler,
    num_negatives: int,
    generator: np.random.Generator,
    *,
    rows: np.ndarray | None = None,
    shuffle: bool = True,
) -> Iterator[Batch]:
    """Yield batches over ``rows`` of ``train`` (all rows by default), shuffled by ``generator``.

    Negatives are drawn per batch, so a fresh set is sampled every epoch.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if num_negatives < 0:
        raise ValueError(f"num_negatives must be >= 0, got {num_negatives}")
    order = np.arange(len(train), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    if shuffle:
        order = generator.permutation(order)
    for start in range(0, order.size, batch_size):
        chunk = order[start : start + batch_size]
        users = train.users[chunk]
        negatives = sampler.sample(users, num_negatives, generator)
        yield Batch(
            rows=torch.from_numpy(chunk),
            users=torch.from_numpy(users),
            items=torch.from_numpy(train.items[chunk]),
            negatives=torch.from_numpy(negatives),
        )
