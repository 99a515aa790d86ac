"""The paper's MovieLens-100K setting (943 users, 1,683 item ids), built from raw ``u.data``.

The authors ship only a 497-user subset (``ml100k``); the paper's Table 1 describes the full
data. This module rebuilds that setting following the paper's protocol:

* every one of the 100,000 ratings is an interaction; a rating below 3 marks it noisy
  (about 17.5% of them);
* users are re-indexed ``u -> u - 1`` (raw ids are 1..943); **item ids are kept as raw ids**
  (1..1682, id 0 unused), so ``n_items = 1683`` as in the paper's sparsity
  ``1 - 100000 / (943 * 1683)`` and item ids mean the same movie as in the authors' ``ml100k``
  files, which also keep raw item ids;
* each user's ratings are shuffled (seeded) and split 8:1:1 into train/valid/test, per user so
  that every user has training data (every ML-100K user has 20+ ratings, so each one also
  gets validation and test draws);
* noisy interactions are removed from test (it must be clean) and kept, flagged, in train and
  valid; a user whose test draws were all noisy has no test items (13 users with seed 0);
* rows of each split are ordered by (user, item).
"""

from __future__ import annotations

import numpy as np

from sgdl_wrap.data.datasets.readers import RatingRows
from sgdl_wrap.data.datasets.split import Dataset
from sgdl_wrap.data.interactions import Interactions

__all__ = ["ML100K_N_ITEMS", "ML100K_N_USERS", "NOISY_BELOW_RATING", "build_ml100k_full"]

ML100K_N_USERS = 943
ML100K_N_ITEMS = 1683
NOISY_BELOW_RATING = 3
_VALID_SHARE = 0.1
_TEST_SHARE = 0.1


def build_ml100k_full(ratings: RatingRows, *, seed: int = 0, name: str = "ml100k-full") -> Dataset:
    """Split raw MovieLens-100K ratings into the paper's 943-user denoising benchmark.

    Args:
        ratings: the rows of ``u.data`` (1-based user ids, raw item ids, ratings 1..5).
        seed: seed of the per-user shuffle; the same seed gives the same split.
        name: the dataset name to record.
    """
    users = ratings.users - 1
    items = ratings.items
    for kind, ids, size in (("user", users, ML100K_N_USERS), ("item", items, ML100K_N_ITEMS)):
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= size):
            raise ValueError(
                f"{ratings.path}: {kind} ids outside the ML-100K range "
                f"({int(ids.min())}..{int(ids.max())} after re-indexing, expected 0..{size - 1})"
            )
    if ratings.ratings.size and not np.isin(ratings.ratings, [1, 2, 3, 4, 5]).all():
        raise ValueError(f"{ratings.path}: ratings must be 1..5, got {np.unique(ratings.ratings)}")
    noisy = ratings.ratings < NOISY_BELOW_RATING

    rng = np.random.default_rng(seed)
    # A random permutation, then a stable sort by user: each user's rows in random order.
    order = rng.permutation(users.size)
    order = order[np.argsort(users[order], kind="stable")]
    counts = np.bincount(users, minlength=ML100K_N_USERS)
    first_row = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(order.size) - np.repeat(first_row, counts)
    user_count = counts[users[order]]
    n_test = np.floor(user_count * _TEST_SHARE + 0.5).astype(np.int64)
    n_valid = np.floor(user_count * _VALID_SHARE + 0.5).astype(np.int64)
    is_test = rank < n_test
    is_valid = ~is_test & (rank < n_test + n_valid)
    is_train = ~(is_test | is_valid)

    def part(mask: np.ndarray, keep_flags: bool) -> Interactions:
        rows = order[mask]
        rows = rows[np.lexsort((items[rows], users[rows]))]
        return Interactions(
            users[rows],
            items[rows],
            ML100K_N_USERS,
            ML100K_N_ITEMS,
            noisy[rows] if keep_flags else None,
        )

    test_rows = is_test & ~noisy[order]
    return Dataset(
        name=name,
        train=part(is_train, keep_flags=True),
        valid=part(is_valid, keep_flags=True),
        test=part(test_rows, keep_flags=False),
    )
