"""Benchmark data: the paper's datasets (pinned, verified, offline-first) and synthetic data.

* :func:`load_dataset` / :data:`DATASETS`: ``ml100k``, ``ml100k-full``, ``adressa``, ``yelp``.
* :func:`make_synthetic`: a generated benchmark with planted false positives.
* :class:`Dataset`: the train/valid/test triple both return.
"""

from sgdl_wrap.data.datasets.checksum import Checksum, ChecksumError
from sgdl_wrap.data.datasets.download import DownloadError
from sgdl_wrap.data.datasets.files import FileSpec
from sgdl_wrap.data.datasets.registry import DATASETS, DatasetSpec, load_dataset
from sgdl_wrap.data.datasets.split import Dataset
from sgdl_wrap.data.datasets.synthetic import make_synthetic

__all__ = [
    "DATASETS",
    "Checksum",
    "ChecksumError",
    "Dataset",
    "DatasetSpec",
    "DownloadError",
    "FileSpec",
    "load_dataset",
    "make_synthetic",
]
