"""Training methods: each trains one epoch its own way; ``runner.run`` owns the epochs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, cast

import numpy as np
import torch

from benchmarks.models import MODELS
from benchmarks.run_config import RunConfig
from sgdl_wrap import (
    Batch,
    Recommender,
    SGDLConfig,
    SGDLWrapper,
    UniformNegativeSampler,
    iterate_batches,
)
from sgdl_wrap.datasets import Dataset
from sgdl_wrap.training import train_epoch

__all__ = ["METHODS", "SGDLTrainer", "Trainer"]

log = logging.getLogger(__name__)


class Trainer:
    """Plain ("Normal") training: the model, its loss, Adam, uniform negatives, all seeded."""

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        spec = MODELS[config.model]
        torch.manual_seed(config.seed)
        self.data, self.config = data, config
        self.rng = np.random.default_rng(config.seed)
        self.device = torch.device(config.device)
        self.model = spec.build(data.train).to(self.device)
        self.loss = spec.make_loss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.resolved_lr())
        self.sampler = UniformNegativeSampler(data.train)

    def batches(self) -> Iterator[Batch]:
        for batch in iterate_batches(self.data.train, self.config.resolved_batch_size(),
                                     self.sampler, self.loss.num_negatives, self.rng):
            yield batch.to(self.device)

    def train_epoch(self, epoch: int) -> float:
        """Train one epoch; returns the mean training loss."""
        self.model.train()
        return train_epoch(self.recommender, self.loss, self.optimizer, self.batches(), epoch=epoch)

    @property
    def recommender(self) -> Recommender:
        """The model, typed by its scoring contract."""
        return cast(Recommender, self.model)

    @property
    def may_stop(self) -> bool:
        """Whether early stopping may end the run now."""
        return True

    @property
    def regime_changed(self) -> bool:
        """Whether the epoch just trained changed how training proceeds (early stopping then
        grants a fresh patience)."""
        return False

    def diagnostics(self) -> dict[str, Any]:
        """Method-specific records for the result file."""
        return {}


class SGDLTrainer(Trainer):
    """SGDL around the same model, loss and optimizer (``RunConfig.extra`` holds
    :class:`SGDLConfig` overrides; the run's seed seeds the wrapper)."""

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        super().__init__(data, config)
        settings = {"seed": config.seed, **config.extra}
        self.sgdl = SGDLWrapper(self.model, self.loss, train=data.train,
                                config=SGDLConfig.from_dict(settings), device=self.device)

    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        total, count = 0.0, 0
        for batch in self.sgdl.batches(self.config.resolved_batch_size()):
            total += self.sgdl.step(batch, self.optimizer) * len(batch)
            count += len(batch)
        report = self.sgdl.end_epoch()
        log.info("epoch %d SGDL %s", epoch, report)
        return total / max(count, 1)

    @property
    def may_stop(self) -> bool:
        # Stopping in Phase I would end SGDL before its second phase ever ran.
        return self.sgdl.phase.value == "self_guided"

    @property
    def regime_changed(self) -> bool:
        return bool(self.sgdl.reports) and self.sgdl.reports[-1].switched

    def diagnostics(self) -> dict[str, Any]:
        return {
            "sgdl_config": self.sgdl.config.to_dict(),
            "switch_epoch": self.sgdl.switch_epoch,
            "memorized": None if self.sgdl.memorized_rows is None
            else int(self.sgdl.memorized_rows.size),
            "epochs": [report.as_dict() for report in self.sgdl.reports],
        }


METHODS: dict[str, Callable[[Dataset, RunConfig], Trainer]] = {
    "normal": Trainer,
    "sgdl": SGDLTrainer,
}
