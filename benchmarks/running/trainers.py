"""Training methods: each trains one epoch its own way; ``runner.run`` owns the epochs.

A method's hyperparameters come from ``RunConfig.extra``; a key the method does not know
raises (:func:`sgdl_wrap.config.settings_from_dict`).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Iterator, Mapping
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from sgdl_wrap import (
    Batch,
    Phase,
    Recommender,
    SGDLConfig,
    SGDLWrapper,
    UniformNegativeSampler,
    iterate_batches,
)
from sgdl_wrap.adapters import LightGCN
from sgdl_wrap.benchmarks.reports.figure_data import loss_histogram, weight_sample
from sgdl_wrap.benchmarks.running.models import MODELS
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.config import settings_from_dict
from sgdl_wrap.data.datasets import Dataset
from sgdl_wrap.data.sampling import NegativeSampler
from sgdl_wrap.losses import per_sample_losses
from sgdl_wrap.training import optimize_epoch

__all__ = [
    "FrozenSGDLTrainer", "MatchedNormalTrainer", "PublishedSGDLTrainer", "SGDLTrainer", "Trainer",
]

log = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class NormalSettings:
    """``track_memorization``: run SGDL's per-epoch memorization test and noise estimate on
    the Normal model (a wrapper used as a monitor only, never stepping), for Fig. 1."""

    track_memorization: bool = False


class Trainer:
    """Plain ("Normal") training: the model, its loss, Adam, uniform negatives, all seeded."""

    name = "normal"
    Settings: type[Any] = NormalSettings
    # The paper's Table 2 method whose numbers this method's results sit beside (None: none).
    paper_method: str | None = "normal"
    # Run settings (RunConfig fields) this method's protocol fixes.
    protocol: Mapping[str, Any] = {}

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        for key, value in self.protocol.items():
            if getattr(config, key) != value:
                raise ValueError(f"{self.name} runs with {key}={value}, got {getattr(config, key)}")
        self.settings = self.parse_settings(config)
        spec = MODELS[config.model]
        torch.manual_seed(config.seed)
        self.data, self.config = data, config
        self.rng = np.random.default_rng(config.seed)
        self.device = torch.device(config.device)
        self.model = spec.build(data.train).to(self.device)
        self.loss = spec.make_loss()
        self.optimizer = self.new_optimizer()
        self.positives = data.train
        self.sampler: NegativeSampler = UniformNegativeSampler(data.train)
        self.monitor: SGDLWrapper | None = None
        self.figure_data: dict[str, Any] = {}
        if getattr(self.settings, "track_memorization", False):
            self.monitor = SGDLWrapper(self.model, self.loss, train=data.train,
                                       config=SGDLConfig(seed=config.seed), device=self.device)

    def new_optimizer(self) -> torch.optim.Optimizer:
        """A fresh Adam over ``self.model``'s parameters at the run's learning rate (a method
        that replaces the model or restarts training calls it again)."""
        return torch.optim.Adam(self.model.parameters(), lr=self.config.resolved_lr())

    @classmethod
    def settings_for(cls, extra: Mapping[str, Any], seed: int) -> Any:
        """This method's hyperparameters from a run's ``extra`` and seed; equal results mean
        the same training. Raises on an unknown key or an invalid value."""
        return settings_from_dict(cls.Settings, extra, f"{cls.name} setting")

    def parse_settings(self, config: RunConfig) -> Any:
        """This method's hyperparameters from ``config.extra``."""
        return self.settings_for(config.extra, config.seed)

    def batches(self) -> Iterator[Batch]:
        for batch in iterate_batches(self.positives, self.config.resolved_batch_size(),
                                     self.sampler, self.loss.num_negatives, self.rng):
            yield batch.to(self.device)

    def batch_loss(self, batch: Batch, where: str) -> torch.Tensor:
        """The scalar objective of one batch (Normal: the mean per-sample loss)."""
        return per_sample_losses(self.recommender, self.loss, batch, where=where).mean()

    def train_epoch(self, epoch: int) -> float:
        """Train one epoch; returns the mean training objective."""
        self.model.train()
        mean = optimize_epoch(self.batch_loss, self.optimizer, self.batches(), epoch=epoch)
        if self.monitor is not None and self.monitor.end_epoch().switched:
            self.figure_data["loss_histogram"] = loss_histogram(self.monitor)
        return mean

    @property
    def recommender(self) -> Recommender:
        """The model, typed by its scoring contract."""
        return cast(Recommender, self.model)

    @property
    def may_stop(self) -> bool:
        """Whether early stopping may end the run now."""
        return True

    @property
    def validates(self) -> bool:
        """Whether the runner validates after the epoch just trained (at its ``eval_every``)."""
        return True

    @property
    def regime_changed(self) -> bool:
        """Whether the epoch just trained changed how training proceeds (early stopping then
        grants a fresh patience)."""
        return False

    def diagnostics(self) -> dict[str, Any]:
        """Method-specific records for the result file."""
        if self.monitor is None:
            return {}
        return {"epochs": [report.as_dict() for report in self.monitor.reports],
                "figure_data": self.figure_data}


class SGDLTrainer(Trainer):
    """SGDL around the same model, loss and optimizer (``RunConfig.extra`` holds
    :class:`SGDLConfig` overrides; the run's seed seeds the wrapper)."""

    name = "sgdl"
    paper_method: str | None = "sgdl"
    reset_model_optimizer: bool

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        super().__init__(data, config)
        self.sgdl = SGDLWrapper(self.model, self.loss, train=data.train, config=self.settings,
                                device=self.device)
        # Its own generator, so that recording figure data leaves training's draws alone.
        self.figure_rng = np.random.default_rng(config.seed)

    # Settings this method fixes: a run differs from an SGDL run of the same ``extra`` in
    # these alone (the matched controls below).
    fixed: Mapping[str, Any] = {}

    @classmethod
    def settings_for(cls, extra: Mapping[str, Any], seed: int) -> tuple[SGDLConfig, bool]:
        """The wrapper's config and ``reset_model_optimizer`` from ``extra``: it holds
        :class:`SGDLConfig` keys and ``reset_model_optimizer`` (bool, default False):
        re-create the model's Adam at every Phase II epoch, as the authors' code does; the
        wrapper itself never touches the user's optimizer. Raises on an unknown key, an
        invalid value, or a key this method fixes."""
        wrapper = dict(extra)
        for key, value in cls.fixed.items():
            if key in wrapper and wrapper[key] != value:
                raise ValueError(f"{cls.name} fixes {key}={value!r}; got {wrapper[key]!r}")
        wrapper.update(cls.fixed)
        reset = wrapper.pop("reset_model_optimizer", False)
        if not isinstance(reset, bool):
            raise ValueError(f"reset_model_optimizer must be true or false, got {reset!r}")
        return SGDLConfig.from_dict({"seed": seed, **wrapper}), reset

    def parse_settings(self, config: RunConfig) -> SGDLConfig:
        settings, self.reset_model_optimizer = self.settings_for(config.extra, config.seed)
        return settings

    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        if self.reset_model_optimizer and self.sgdl.phase is Phase.SELF_GUIDED:
            self.optimizer = self.new_optimizer()
        total, count = 0.0, 0
        for batch in self.sgdl.batches(self.config.resolved_batch_size()):
            total += self.sgdl.step(batch, self.optimizer) * len(batch)
            count += len(batch)
        # Read before end_epoch clears them; no row is weighed in Phase I.
        losses, weights = self.sgdl.sample_losses(), self.sgdl.sample_weights()
        report = self.sgdl.end_epoch()
        if report.switched:
            self.figure_data["loss_histogram"] = loss_histogram(self.sgdl)
        sample = weight_sample(self.sgdl, losses, weights, self.figure_rng)
        if sample is not None:
            self.figure_data["weights"] = sample
        log.info("epoch %d SGDL %s", epoch, report)
        return total / max(count, 1)

    @property
    def may_stop(self) -> bool:
        # Stopping in Phase I would end SGDL before its second phase ever ran.
        return self.sgdl.phase is Phase.SELF_GUIDED

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
            "figure_data": self.figure_data,
        }



class MatchedNormalTrainer(SGDLTrainer):
    """Normal training under SGDL's schedule: the same Phase I learning-rate factor, the
    switch that SGDL's memorization rule picks (Phase I is SGDL's, so on the same seed it
    switches at the same epoch), the same optimizer re-creation and early stopping, every
    weight 1. What SGDL adds over it is what its weights add."""

    name = "normal-matched"
    paper_method = None
    fixed = {"weighting": "uniform"}


class FrozenSGDLTrainer(SGDLTrainer):
    """SGDL with its weighting net frozen at initialisation, as in the first published
    release of the authors' code; everything else as in SGDL."""

    name = "sgdl-frozen"
    paper_method = None
    fixed = {"weighting": "frozen"}


class PublishedSGDLTrainer(SGDLTrainer):
    """The whole protocol of the authors' first release (ZJU-DAILY/SGDL 91202d1), whose
    LightGCN ML-100K log is the paper's SGDL row: the weighting net frozen at initialisation
    (its look-ahead cut the meta-gradient), Phase II restarted from the model's initial
    parameters (its snapshot was taken at construction and reloaded at the first Phase II
    batch), Adam re-created at the switch and every Phase II epoch, Phase I at 1/5 of the
    rate, validation only in Phase II and every 5 epochs, stopping after 8 validations
    without a gain in Recall@5, and LightGCN's tables initialised N(0, 0.1).
    ``benchmarks/results/REPRODUCTION.md`` lists where it still differs."""

    name = "sgdl-as-published"
    paper_method = "sgdl"
    fixed = {"weighting": "frozen", "reset_model_optimizer": True, "phase1_lr_factor": 0.2}
    protocol = {"patience": 8, "eval_every": 5}

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        super().__init__(data, config)
        if isinstance(self.model, LightGCN):
            # Drawn after the model's own initialisation, from the same seeded stream.
            with torch.no_grad():
                nn.init.normal_(self.model.user_embedding, std=0.1)
                nn.init.normal_(self.model.item_embedding, std=0.1)
        self.initial_state = copy.deepcopy(self.model.state_dict())

    def train_epoch(self, epoch: int) -> float:
        mean = super().train_epoch(epoch)
        if self.sgdl.reports[-1].switched:
            self.model.load_state_dict(self.initial_state)
        return mean

    @property
    def validates(self) -> bool:
        return self.sgdl.phase is Phase.SELF_GUIDED
