"""sgdl_wrap: Self-Guided Learning to Denoise (SIGIR 2022) around any recommender."""

from sgdl_wrap.batching import Batch, iterate_batches
from sgdl_wrap.interactions import Interactions, UserCSR
from sgdl_wrap.protocols import PerSampleLoss, Recommender
from sgdl_wrap.sampling import NegativeSampler, PopularityNegativeSampler, UniformNegativeSampler

__all__ = [
    "Batch",
    "Interactions",
    "NegativeSampler",
    "PerSampleLoss",
    "PopularityNegativeSampler",
    "Recommender",
    "UniformNegativeSampler",
    "UserCSR",
    "iterate_batches",
]
__version__ = "0.1.0"
