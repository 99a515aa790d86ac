"""Mini-batches of training samples: rows of an :class:`Interactions` plus sampled negatives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sgdl_wrap.data.interactions import Interactions
from sgdl_wrap.data.sampling import NegativeSampler

__all__ = ["Batch", "check_batch", "draw_batch", "iterate_batches"]


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


def draw_batch(
    train: Interactions,
    rows: np.ndarray,
    size: int,
    sampler: NegativeSampler,
    num_negatives: int,
    generator: np.random.Generator,
) -> Batch:
    """``size`` of ``train``'s ``rows`` drawn uniformly with replacement, with fresh
    negatives (Phase II's memorized batch)."""
    chosen = generator.choice(rows, size=size, replace=True)
    users = train.users[chosen]
    negatives = sampler.sample(users, num_negatives, generator)
    return Batch(
        rows=torch.from_numpy(chosen),
        users=torch.from_numpy(users),
        items=torch.from_numpy(train.items[chosen]),
        negatives=torch.from_numpy(negatives),
    )


def check_batch(batch: Batch, n_rows: int, num_negatives: int) -> None:
    """Raise a ``ValueError`` naming the problem unless ``batch`` holds ``[B]`` rows, users
    and items of one length, ``B > 0``, rows in ``[0, n_rows)`` and ``[B, num_negatives]``
    negatives."""
    rows = batch.rows
    if rows.dim() != 1 or batch.users.shape != rows.shape or batch.items.shape != rows.shape:
        raise ValueError(
            f"batch rows, users and items must be [B] vectors of one length, got "
            f"{tuple(rows.shape)}, {tuple(batch.users.shape)}, {tuple(batch.items.shape)}"
        )
    if rows.numel() == 0:
        raise ValueError("empty batch")
    low, high = int(rows.min()), int(rows.max())
    if low < 0 or high >= n_rows:
        bad = low if low < 0 else high
        raise ValueError(f"training row {bad} is out of range [0, {n_rows})")
    if batch.negatives.shape != (len(batch), num_negatives):
        raise ValueError(
            f"batch negatives have shape {tuple(batch.negatives.shape)}; the loss expects "
            f"[{len(batch)}, {num_negatives}]"
        )
