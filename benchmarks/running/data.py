"""Where the benchmarks find their data: ``--data-dir``, ``SGDL_DATA_DIR``, or this
project's ``../shared/data`` when it exists; ``synthetic`` is generated in code."""

from __future__ import annotations

import os
from pathlib import Path

from sgdl_wrap.data.datasets import Dataset, load_dataset, make_synthetic

__all__ = ["default_data_dir", "load"]

_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def default_data_dir() -> Path | None:
    """``SGDL_DATA_DIR`` if set, else the project's ``../shared/data`` when it exists."""
    if os.environ.get("SGDL_DATA_DIR"):
        return Path(os.environ["SGDL_DATA_DIR"])
    return _SHARED_DATA if _SHARED_DATA.is_dir() else None


def load(name: str, data_dir: Path | None) -> Dataset:
    """The named dataset (see :data:`sgdl_wrap.data.datasets.DATASETS`) or ``"synthetic"``."""
    if name == "synthetic":
        return make_synthetic(seed=0)
    return load_dataset(name, data_dir=data_dir)
