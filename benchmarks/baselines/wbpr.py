"""WBPR (Gantner et al., 2012): negatives drawn in proportion to item popularity.

The model keeps its own loss (BPR or BCE); only the negative sampler changes, to
:class:`sgdl_wrap.PopularityNegativeSampler` (rejecting the user's own positives).
"""

from __future__ import annotations

from sgdl_wrap import PopularityNegativeSampler
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.trainers import Trainer
from sgdl_wrap.data.datasets import Dataset

__all__ = ["WBPRTrainer"]


class WBPRTrainer(Trainer):
    """Normal training with popularity-proportional negatives; no extra hyperparameters."""

    name = "wbpr"

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        super().__init__(data, config)
        self.sampler = PopularityNegativeSampler(data.train)
