"""The benchmark datasets by name, with pinned sources, and :func:`load_dataset`.

* ``ml100k``: MovieLens-100K as shipped by the SGDL authors (497 users, item ids kept raw,
  so 1,683 item ids).
* ``ml100k-full``: the paper's 943-user MovieLens setting built from GroupLens' raw
  ``u.data`` (see :mod:`sgdl_wrap.data.datasets.movielens`; the only dataset that uses ``seed``).
* ``adressa`` and ``yelp``: T-CE's (DenoisingRec) splits. Their id-space sizes are
  hard-coded as in the authors' loaders (the Table 1 sizes), and checked against the data.

Every file is pinned to a commit of its source repository (or to GroupLens' zip) and to a
checksum: sha256 where one was recorded from the file itself, else the git blob id.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from sgdl_wrap.data.datasets.checksum import Checksum
from sgdl_wrap.data.datasets.files import FileSpec, resolve_file
from sgdl_wrap.data.datasets.movielens import ML100K_N_ITEMS, ML100K_N_USERS, build_ml100k_full
from sgdl_wrap.data.datasets.readers import read_movielens_ratings, read_rating_file, read_test_file
from sgdl_wrap.data.datasets.split import Dataset
from sgdl_wrap.data.interactions import Interactions

__all__ = ["DATASETS", "DatasetSpec", "load_dataset"]

logger = logging.getLogger(__name__)

_SGDL = "https://raw.githubusercontent.com/ZJU-DAILY/SGDL/718ced927756badcd5f623708bd884dc7d7d5d2b"
_TCE = (
    "https://raw.githubusercontent.com/WenjieWWJ/DenoisingRec/"
    "451779a201d2b7b9f4929d35b791caf53f94b5f4"
)
_DECA = (
    "https://raw.githubusercontent.com/wangyu-ustc/DeCA/8b04aa8c24c08c4519f559d25e4c3da34fe97bd3"
)
_GROUPLENS_ML100K = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"

Builder = Callable[["DatasetSpec", Mapping[str, Path], int], Dataset]


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    """How to obtain and assemble one dataset.

    Attributes:
        name: registry key.
        description: one line for listings.
        files: role (``"train"``, ``"valid"``, ``"test"``, ``"ratings"``) -> interchangeable
            versions of that file, preferred first.
        n_users: size of the user id space.
        n_items: size of the item id space.
        build: turns the resolved local paths (by role) and a seed into a :class:`Dataset`.
    """

    name: str
    description: str
    files: Mapping[str, tuple[FileSpec, ...]]
    n_users: int
    n_items: int
    build: Builder


def _sha256(value: str) -> Checksum:
    return Checksum("sha256", value)


def _git_blob(value: str) -> Checksum:
    return Checksum("git-blob", value)


def _build_tce(spec: DatasetSpec, paths: Mapping[str, Path], seed: int) -> Dataset:
    """Assemble T-CE-format train/valid/test files; ``seed`` is unused (the split is fixed)."""
    train = read_rating_file(paths["train"]).to_interactions(spec.n_users, spec.n_items)
    valid = read_rating_file(paths["valid"]).to_interactions(spec.n_users, spec.n_items)
    test = read_test_file(paths["test"]).to_interactions(spec.n_users, spec.n_items)
    if test.noisy is not None:
        if test.noisy.any():
            _warn(f"{paths['test']}: dropped {int(test.noisy.sum())} test rows flagged noisy")
        test = test.clean()
    _warn_overlaps(spec.name, {"train": train, "valid": valid, "test": test})
    return Dataset(spec.name, train, valid, test)


def _build_movielens(spec: DatasetSpec, paths: Mapping[str, Path], seed: int) -> Dataset:
    return build_ml100k_full(read_movielens_ratings(paths["ratings"]), seed=seed, name=spec.name)


def _warn_overlaps(name: str, splits: Mapping[str, Interactions]) -> None:
    """Report (user, item) pairs present in two splits; kept as shipped, but worth knowing.

    The shipped Adressa files have such pairs between valid and test.
    """
    names = list(splits)
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            other = splits[second]
            shared = int(splits[first].contains(other.users, other.items).sum())
            if shared:
                _warn(f"{name}: {shared} (user, item) pairs are in both {first} and {second}")


def _warn(message: str) -> None:
    logger.warning(message)
    warnings.warn(message, stacklevel=4)


DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        "ml100k": DatasetSpec(
            name="ml100k",
            description="MovieLens-100K split shipped with SGDL (497 users; rating < 3 = noisy)",
            files=MappingProxyType(
                {
                    "train": (
                        FileSpec(
                            "ml100k/ml100k.train.rating",
                            f"{_SGDL}/data/ml100k/ml100k.train.rating",
                            _sha256(
                                "cbb6f864effa94ecb408553cefb6a5a77b704b8fce4c6c32b3683e6c02198f59"
                            ),
                        ),
                    ),
                    "valid": (
                        FileSpec(
                            "ml100k/ml100k.valid.rating",
                            f"{_SGDL}/data/ml100k/ml100k.valid.rating",
                            _sha256(
                                "1208c64bcb45247c91e74e3632ecd15de87b6133d084265be1066931686623bb"
                            ),
                        ),
                    ),
                    "test": (
                        FileSpec(
                            "ml100k/ml100k.test.negative",
                            f"{_SGDL}/data/ml100k/ml100k.test.negative",
                            _sha256(
                                "add19fe465be20e6721ea3aba40f183ea94054f0b692f0e7e2b1a57bea648bc7"
                            ),
                        ),
                    ),
                }
            ),
            n_users=497,
            n_items=1683,
            build=_build_tce,
        ),
        "ml100k-full": DatasetSpec(
            name="ml100k-full",
            description="MovieLens-100K, all 943 users, seeded per-user 8:1:1 split (paper)",
            files=MappingProxyType(
                {
                    "ratings": (
                        FileSpec(
                            "ml-100k-raw/u.data",
                            _GROUPLENS_ML100K,
                            _sha256(
                                "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
                            ),
                            member="ml-100k/u.data",
                        ),
                    ),
                }
            ),
            n_users=ML100K_N_USERS,
            n_items=ML100K_N_ITEMS,
            build=_build_movielens,
        ),
        "adressa": DatasetSpec(
            name="adressa",
            description="Adressa news clicks, T-CE split (short dwell time = noisy)",
            files=MappingProxyType(
                {
                    "train": (
                        FileSpec(
                            "adressa/adressa.train.rating",
                            f"{_TCE}/data/adressa/adressa.train.rating",
                            _git_blob("f587bb18d26737d04ec70a944d81db63f6e3617a"),
                        ),
                    ),
                    "valid": (
                        FileSpec(
                            "adressa/adressa.valid.rating",
                            f"{_TCE}/data/adressa/adressa.valid.rating",
                            _sha256(
                                "715c3949f8845f99f14964b26c735e8926b0fa5e32f7639edf3983905a971ef4"
                            ),
                        ),
                    ),
                    "test": (
                        FileSpec(
                            "adressa/adressa.test.negative",
                            f"{_TCE}/data/adressa/adressa.test.negative",
                            _git_blob("0fb39d37d9a5b2399c97c6ed936b4bfd18035585"),
                        ),
                        # The same test users (10,380) rewritten by DeCA as `user item 1`, CRLF.
                        FileSpec(
                            "adressa/from_DeCA/adressa.test.negative",
                            f"{_DECA}/data/adressa/adressa.test.negative",
                            _sha256(
                                "69f4efed142360c45571eeafe6ef81634ac8aa9d4c150e3f4be63c55609c4435"
                            ),
                        ),
                    ),
                }
            ),
            n_users=212_231,
            n_items=6_596,
            build=_build_tce,
        ),
        "yelp": DatasetSpec(
            name="yelp",
            description="Yelp 2018, T-CE split (rating < 3 = noisy)",
            files=MappingProxyType(
                {
                    "train": (
                        FileSpec(
                            "yelp/yelp.train.rating",
                            f"{_TCE}/data/yelp/yelp.train.rating",
                            _git_blob("4cf811fec54ba26ca81defc37a65e891a4c83ddf"),
                        ),
                    ),
                    "valid": (
                        FileSpec(
                            "yelp/yelp.valid.rating",
                            f"{_TCE}/data/yelp/yelp.valid.rating",
                            _sha256(
                                "b15a9a833b842c66d442491c405c0ebdfc7c449bef118d9e2de2eaff698e1141"
                            ),
                        ),
                    ),
                    "test": (
                        FileSpec(
                            "yelp/yelp.test.negative",
                            f"{_TCE}/data/yelp/yelp.test.negative",
                            _sha256(
                                "9d3bca71dd3f54bcd5b1e287bdc09d3f6e7d6f8b03efd666d5be9674d6144851"
                            ),
                        ),
                    ),
                }
            ),
            n_users=45_548,
            n_items=57_396,
            build=_build_tce,
        ),
    }
)


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    seed: int = 0,
) -> Dataset:
    """Load a registered dataset, from local copies where possible.

    Each file is looked up in the offline ``data_dir`` (default ``$SGDL_DATA_DIR``), then in
    ``cache_dir`` (default ``$SGDL_CACHE_DIR`` or ``~/.cache/sgdl_wrap``), then downloaded into
    the cache when ``download`` is true; every copy is checked against its pinned checksum.

    Args:
        name: a key of :data:`DATASETS`.
        data_dir: offline data directory laid out like the shared data folder.
        cache_dir: download cache directory.
        download: allow downloads of missing files.
        seed: split seed, for datasets that are split here (``ml100k-full``).

    Raises:
        ValueError: unknown ``name``, or malformed data.
        FileNotFoundError: a file is missing and cannot be downloaded; the message names the
            file, every place looked in, and its source URL.
        ChecksumError: a local or downloaded file has unexpected content.
    """
    spec = DATASETS.get(name)
    if spec is None:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
    paths = {
        role: resolve_file(candidates, data_dir=data_dir, cache_dir=cache_dir, download=download)
        for role, candidates in spec.files.items()
    }
    dataset = spec.build(spec, paths, seed)
    logger.info("loaded %s: %s", name, dataset.summary())
    return dataset
