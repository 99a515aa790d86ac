"""sgdl_wrap: Self-Guided Learning to Denoise (SIGIR 2022) around any recommender."""

from sgdl_wrap.config import SGDLConfig
from sgdl_wrap.data.batching import Batch, iterate_batches
from sgdl_wrap.data.interactions import Interactions, UserCSR
from sgdl_wrap.data.sampling import (
    NegativeSampler,
    PopularityNegativeSampler,
    UniformNegativeSampler,
)
from sgdl_wrap.diagnostics import EpochReport
from sgdl_wrap.protocols import PerSampleLoss, Recommender
from sgdl_wrap.wrapper import Phase, SGDLWrapper

__all__ = [
    "Batch",
    "EpochReport",
    "Interactions",
    "NegativeSampler",
    "PerSampleLoss",
    "PopularityNegativeSampler",
    "Phase",
    "Recommender",
    "SGDLConfig",
    "SGDLWrapper",
    "UniformNegativeSampler",
    "UserCSR",
    "iterate_batches",
]
__version__ = "0.1.0"
