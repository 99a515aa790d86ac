"""Training data: interactions (:mod:`.interactions`), negative sampling (:mod:`.sampling`),
mini-batches (:mod:`.batching`) and the paper's datasets (:mod:`.datasets`)."""

from sgdl_wrap.data.batching import Batch, iterate_batches
from sgdl_wrap.data.datasets import DATASETS, Dataset, load_dataset, make_synthetic
from sgdl_wrap.data.interactions import Interactions, UserCSR
from sgdl_wrap.data.sampling import (
    NegativeSampler,
    PopularityNegativeSampler,
    UniformNegativeSampler,
)

__all__ = [
    "DATASETS",
    "Batch",
    "Dataset",
    "Interactions",
    "NegativeSampler",
    "PopularityNegativeSampler",
    "UniformNegativeSampler",
    "UserCSR",
    "iterate_batches",
    "load_dataset",
    "make_synthetic",
]
