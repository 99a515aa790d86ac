"""Building blocks for a user-owned training loop: one epoch of plain training and model
selection with early stopping. Nothing here owns the loop; see ``examples/`` and
``benchmarks/`` for loops built from these pieces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from sgdl_wrap.data.batching import Batch
from sgdl_wrap.losses import per_sample_losses
from sgdl_wrap.protocols import PerSampleLoss, Recommender

__all__ = ["ModelSelector", "optimize_epoch", "scaled_learning_rate", "train_epoch"]

log = logging.getLogger(__name__)


def train_epoch(
    model: Recommender,
    loss: PerSampleLoss,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    *,
    epoch: int = 0,
) -> float:
    """One epoch of plain ("Normal") training, every sample weighted 1; returns the mean loss."""

    def mean_loss(batch: Batch, where: str) -> torch.Tensor:
        return per_sample_losses(model, loss, batch, where=where).mean()

    return optimize_epoch(mean_loss, optimizer, batches, epoch=epoch)


def optimize_epoch(
    objective: Callable[[Batch, str], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    *,
    epoch: int = 0,
) -> float:
    """One optimizer step per batch on ``objective(batch, where)``, a scalar (``where``
    names the batch for error messages); returns the objective's mean over samples."""
    total, count = 0.0, 0
    for index, batch in enumerate(batches):
        value = objective(batch, f"epoch {epoch}, batch {index}")
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        total += float(value.detach()) * len(batch)
        count += len(batch)
    return total / max(count, 1)


@contextmanager
def scaled_learning_rate(optimizer: torch.optim.Optimizer, factor: float) -> Iterator[None]:
    """Within the block, every parameter group's rate is ``factor`` times its own; the
    rates are restored after it, whatever happens."""
    if factor == 1.0:
        yield
        return
    rates = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
    try:
        yield
    finally:
        for group, rate in zip(optimizer.param_groups, rates):
            group["lr"] = rate


@dataclass
class ModelSelector:
    """Keeps the best checkpoint by a validation metric and decides when to stop early.

    Call :meth:`update` after each validation; it returns True when the metric improved.
    :attr:`should_stop` becomes True after ``patience`` validations without improvement.
    """

    metric: str = "recall@5"
    patience: int = 10
    best_value: float = -float("inf")
    best_epoch: int = -1
    best_metrics: dict[str, float] = field(default_factory=dict)
    _best_state: dict[str, torch.Tensor] | None = None
    _stale: int = 0

    def update(self, epoch: int, metrics: dict[str, float], model: torch.nn.Module) -> bool:
        if self.metric not in metrics:
            raise KeyError(f"metric {self.metric!r} not in {sorted(metrics)}")
        value = metrics[self.metric]
        if value > self.best_value:
            self.best_value, self.best_epoch = value, epoch
            self.best_metrics = dict(metrics)
            self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self._stale = 0
            log.info("epoch %d: new best %s = %.4f", epoch, self.metric, value)
            return True
        self._stale += 1
        return False

    def restart_patience(self) -> None:
        """Allow ``patience`` more validations from now on, keeping the best checkpoint (for a
        change of training regime, such as SGDL's switch to Phase II)."""
        self._stale = 0

    @property
    def should_stop(self) -> bool:
        return self._stale >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best checkpoint into ``model``."""
        if self._best_state is None:
            raise RuntimeError("no checkpoint was selected yet: call update() first")
        model.load_state_dict(self._best_state)
