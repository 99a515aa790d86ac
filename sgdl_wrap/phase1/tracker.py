"""The memorization point (SGDL Sec. 3.1): after every epoch, which training interactions the
model has memorized, how noisy the data looks, and whether Phase II should start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sgdl_wrap.config import SGDLConfig
from sgdl_wrap.data.interactions import Interactions
from sgdl_wrap.data.sampling import NegativeSampler
from sgdl_wrap.phase1.memorization import memorization_pass
from sgdl_wrap.phase1.memory_bank import MemoryBank
from sgdl_wrap.phase1.noise import NoiseEstimate, estimate_noise_rate, normalize_per_user
from sgdl_wrap.protocols import PerSampleLoss, Recommender

__all__ = ["MemorizationTracker", "Measurement"]


@dataclass(frozen=True)
class Measurement:
    """One epoch's measurement: the memorized rows ``[N]`` (bool) under the bank's rule,
    every row's loss ``[N]``, the losses normalised per user ``[N]`` and the noise-rate
    estimate fitted to them."""

    memorized: np.ndarray
    losses: np.ndarray
    normalized: np.ndarray
    estimate: NoiseEstimate


class MemorizationTracker:
    """The memory bank of the last ``h`` epochs' memorization marks and the switch rule.

    Args:
        train: the training interactions.
        config: the memorization test, the bank's history and rule, the mixture's settings,
            the noise-rate shift and the forced switch epoch.
    """

    def __init__(self, train: Interactions, config: SGDLConfig) -> None:
        self.train, self.config = train, config
        self.bank = MemoryBank(len(train), config.history, config.threshold_rule)

    def measure(self, model: Recommender, loss: PerSampleLoss, sampler: NegativeSampler,
                rng: np.random.Generator, device: torch.device) -> Measurement:
        """Run the memorization test, record its marks and estimate the noise rate."""
        config = self.config
        result = memorization_pass(model, loss, self.train, sampler, rng,
                                   test=config.memorization_test, device=device)
        self.bank.record(result.marks)
        normalized = normalize_per_user(result.losses, self.train.users, self.train.n_users)
        estimate = estimate_noise_rate(
            normalized, max_iter=config.gmm_max_iter, tol=config.gmm_tol,
            reg_covar=config.gmm_reg_covar, seed=config.seed,
        )
        return Measurement(self.bank.memorized(), result.losses, normalized, estimate)

    def reached(self, measured: Measurement, epoch: int) -> bool:
        """Whether Phase II starts after ``epoch``: the memorized set holds the estimated
        clean share, ``|M| >= (1 - sigma (1 + shift)) |D|``, or the forced epoch came."""
        config = self.config
        shifted = min(max(measured.estimate.rate * (1 + config.noise_rate_shift), 0.0), 1.0)
        reached = measured.memorized.sum() >= (1 - shifted) * len(self.train)
        return bool(reached or (config.switch_epoch is not None and epoch >= config.switch_epoch))

    def state_dict(self) -> dict[str, Any]:
        return {"bank": self.bank.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.bank.load_state_dict(state["bank"])
