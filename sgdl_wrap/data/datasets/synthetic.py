"""A synthetic denoising benchmark with planted, known false positives.

Generative story (all draws from one seeded :class:`numpy.random.Generator`):

* users and items get ``dim``-dimensional Gaussian factors; the affinity of user ``u`` for
  item ``i`` is ``<p_u, q_i> / sqrt(dim)`` (standard normal per pair);
* items get a popularity log-weight ``-popularity_skew * log(1 + rank)`` for a random rank,
  i.e. Zipf-like popularity (``0`` = uniform);
* each user *likes* the half of the items with the highest affinity and dislikes the rest;
* a user's clean positives are drawn without replacement from the liked items with
  probability proportional to ``exp(affinity + popularity)``; the noisy positives (the false
  positives a denoiser should find) from the disliked items in proportion to popularity
  alone, like accidental clicks on whatever is prominent;
* every user has ``interactions_per_user`` positives, split about 8:1:1. The test split gets
  clean positives only; noisy ones go to train and valid, at a rate of ``noise_rate`` of
  their rows (per user rounded up or down at random, so the overall rate is unbiased).

Work is done in blocks of users, so memory stays bounded for any number of users.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sgdl_wrap.data.datasets.split import Dataset
from sgdl_wrap.data.interactions import Interactions

__all__ = ["make_synthetic"]

_SPLIT_SHARE = 0.1
# Affinity/key matrices are built for at most this many (user, item) cells at a time.
_BLOCK_CELLS = 1 << 20


def make_synthetic(
    n_users: int = 200,
    n_items: int = 300,
    *,
    interactions_per_user: int = 20,
    noise_rate: float = 0.2,
    dim: int = 8,
    popularity_skew: float = 1.0,
    seed: int = 0,
) -> Dataset:
    """Generate a :class:`Dataset` with ground-truth noisy flags in train and valid.

    Args:
        n_users: number of users (all of them have interactions).
        n_items: number of items; at least ``2 * interactions_per_user`` so that every user
            has enough liked and disliked items to draw from.
        interactions_per_user: positives per user, over all splits (at least 3).
        noise_rate: expected share of noisy rows in train (and valid), in ``[0, 1)``.
        dim: latent dimension of the preference factors.
        popularity_skew: Zipf exponent of item popularity; ``0`` for uniform.
        seed: the same seed (and arguments) gives the same dataset.
    """
    per_user = interactions_per_user
    if n_users < 1:
        raise ValueError(f"n_users must be at least 1, got {n_users}")
    if per_user < 3:
        raise ValueError(f"interactions_per_user must be at least 3, got {per_user}")
    if n_items < 2 * per_user:
        raise ValueError(
            f"n_items must be at least 2 * interactions_per_user = {2 * per_user}, got {n_items}"
        )
    if not 0.0 <= noise_rate < 1.0:
        raise ValueError(f"noise_rate must be in [0, 1), got {noise_rate}")
    if dim < 1:
        raise ValueError(f"dim must be at least 1, got {dim}")
    if popularity_skew < 0:
        raise ValueError(f"popularity_skew must be non-negative, got {popularity_skew}")

    rng = np.random.default_rng(seed)
    user_factors = rng.standard_normal((n_users, dim), dtype=np.float32)
    item_factors = rng.standard_normal((n_items, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
    ranks = rng.permutation(n_items).astype(np.float32)
    popularity = np.float32(-popularity_skew) * np.log1p(ranks)

    n_test = n_valid = max(1, int(np.floor(per_user * _SPLIT_SHARE + 0.5)))
    train_and_valid = per_user - n_test
    expected_noisy = noise_rate * train_and_valid
    n_noisy = np.floor(expected_noisy).astype(np.int64) + (
        rng.random(n_users) < expected_noisy - np.floor(expected_noisy)
    )

    items = np.empty((n_users, per_user), dtype=np.int64)
    block = max(1, _BLOCK_CELLS // n_items)
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        items[start:stop] = _draw_positives(
            user_factors[start:stop] @ item_factors.T,
            popularity,
            n_noisy[start:stop],
            per_user,
            rng,
        )
    # Columns below a user's clean count hold clean items, the rest noisy ones.
    noisy = np.arange(per_user) >= (per_user - n_noisy)[:, None]

    # Test: n_test random clean cells per user (noisy cells sort last). Valid: n_valid random
    # cells of the remainder; train: the rest.
    test_key = np.where(noisy, 2.0, rng.random(noisy.shape))
    by_test_key = np.argsort(test_key, axis=1)
    rest = by_test_key[:, n_test:]
    rest = np.take_along_axis(rest, np.argsort(rng.random(rest.shape), axis=1), axis=1)
    columns = {
        "test": by_test_key[:, :n_test],
        "valid": rest[:, :n_valid],
        "train": rest[:, n_valid:],
    }
    users = np.broadcast_to(np.arange(n_users)[:, None], items.shape)

    def split(name: str, with_flags: bool) -> Interactions:
        cols = columns[name]
        split_users = np.take_along_axis(users, cols, axis=1).ravel()
        split_items = np.take_along_axis(items, cols, axis=1).ravel()
        flags = np.take_along_axis(noisy, cols, axis=1).ravel()
        order = np.lexsort((split_items, split_users))
        return Interactions(
            split_users[order],
            split_items[order],
            n_users,
            n_items,
            flags[order] if with_flags else None,
        )

    return Dataset(
        name="synthetic",
        train=split("train", with_flags=True),
        valid=split("valid", with_flags=True),
        test=split("test", with_flags=False),
    )


def _draw_positives(
    affinity: npt.NDArray[np.float32],
    popularity: npt.NDArray[np.float32],
    n_noisy: npt.NDArray[np.int64],
    per_user: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """``[B, per_user]`` items per user: clean ones first, then ``n_noisy[b]`` noisy ones.

    Sampling without replacement in proportion to ``exp(score)`` is done with the Gumbel
    top-k trick: add Gumbel noise to the scores and keep the k largest. float32 and in-place
    updates keep this, the only users x items work, cheap.
    """
    n_items = affinity.shape[1]
    n_liked = n_items // 2
    # By rank, not by a threshold value, so ties can never shrink either set.
    liked_columns = np.argpartition(affinity, n_items - n_liked, axis=1)[:, n_items - n_liked :]
    disliked = np.ones(affinity.shape, dtype=bool)
    np.put_along_axis(disliked, liked_columns, False, axis=1)
    # Gumbel noise as -log(Exp(1)). The liked and disliked sets are disjoint, so one draw per
    # cell serves both the clean and the noisy keys.
    keys = rng.standard_exponential(affinity.shape, dtype=np.float32)
    np.log(keys, out=keys)
    np.subtract(popularity, keys, out=keys)
    noisy_keys = np.where(disliked, keys, -np.inf)
    keys += affinity
    keys[disliked] = -np.inf
    clean = _top_k(keys, per_user)
    noisy = _top_k(noisy_keys, int(n_noisy.max(initial=0)))
    n_clean = per_user - n_noisy
    column = np.arange(per_user)
    noisy_column = np.clip(column - n_clean[:, None], 0, max(noisy.shape[1] - 1, 0))
    from_noisy = (
        np.take_along_axis(noisy, noisy_column, axis=1) if noisy.shape[1] else np.zeros_like(clean)
    )
    return np.where(column < n_clean[:, None], clean, from_noisy)


def _top_k(keys: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
    """Column indices of each row's ``k`` largest keys, largest first."""
    if k == 0:
        return np.empty((keys.shape[0], 0), dtype=np.int64)
    n_columns = keys.shape[1]
    top = np.argpartition(keys, n_columns - k, axis=1)[:, n_columns - k :]
    order = np.argsort(np.take_along_axis(keys, top, axis=1), axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)
