"""The synthetic benchmark: planted noise rate, determinism, split invariants, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sgdl_wrap.data.datasets import Dataset, make_synthetic


def arrays(data: Dataset) -> list[np.ndarray]:
    parts = (data.train, data.valid, data.test)
    return [
        array
        for part in parts
        for array in (part.users, part.items, part.noisy)
        if array is not None
    ]


@pytest.mark.parametrize("noise_rate", [0.0, 0.1, 0.2, 0.4])
def test_planted_noise_rate(noise_rate: float) -> None:
    data = make_synthetic(noise_rate=noise_rate, seed=7)
    assert data.train.noisy is not None
    assert abs(float(data.train.noisy.mean()) - noise_rate) < 0.02


def test_shapes_and_split_sizes() -> None:
    data = make_synthetic(n_users=50, n_items=120, interactions_per_user=20)
    assert (data.n_users, data.n_items) == (50, 120)
    # 20 per user -> 16 / 2 / 2.
    assert np.array_equal(data.train.user_counts, np.full(50, 16))
    assert np.array_equal(data.valid.user_counts, np.full(50, 2))
    assert np.array_equal(data.test.user_counts, np.full(50, 2))


def test_flags_only_in_train_and_valid_and_test_is_clean() -> None:
    data = make_synthetic(noise_rate=0.3, seed=1)
    assert data.train.noisy is not None and data.train.noisy.any()
    assert data.valid.noisy is not None
    assert data.test.noisy is None


def test_splits_are_disjoint() -> None:
    data = make_synthetic(seed=2)
    for first, second in (
        (data.train, data.valid),
        (data.train, data.test),
        (data.valid, data.test),
    ):
        assert not first.contains(second.users, second.items).any()


def test_deterministic_for_a_seed() -> None:
    first, again, other = make_synthetic(seed=3), make_synthetic(seed=3), make_synthetic(seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(arrays(first), arrays(again), strict=True))
    assert not np.array_equal(first.train.items, other.train.items)


def test_noisy_positives_are_less_preferred() -> None:
    # Clean positives are drawn in proportion to affinity, so strongly liked items recur as
    # clean positives of many users; noisy ones are drawn from disliked items by popularity
    # alone (uniform here), so they are ordinary items with fewer clean interactions.
    data = make_synthetic(n_users=400, n_items=300, noise_rate=0.3, popularity_skew=0.0, seed=5)
    noisy = data.train.noisy
    assert noisy is not None
    popularity = data.train.clean().item_counts
    assert popularity[data.train.items[~noisy]].mean() > popularity[data.train.items[noisy]].mean()


def test_popularity_skew_concentrates_items() -> None:
    flat = make_synthetic(popularity_skew=0.0, seed=6).train.item_counts
    skewed = make_synthetic(popularity_skew=1.5, seed=6).train.item_counts
    assert np.sort(skewed)[-30:].sum() > np.sort(flat)[-30:].sum()


def test_fast_for_a_thousand_users() -> None:
    start = time.perf_counter()
    data = make_synthetic(n_users=1000, n_items=2000)
    elapsed = time.perf_counter() - start
    assert len(data.train) == 16_000
    assert elapsed < 2.0  # about 0.1 s on a laptop core; generous for loaded CI machines


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_items": 30}, "n_items must be at least 2 \\* interactions_per_user = 40, got 30"),
        ({"noise_rate": 1.0}, "noise_rate must be in \\[0, 1\\), got 1.0"),
        ({"interactions_per_user": 2}, "interactions_per_user must be at least 3, got 2"),
        ({"n_users": 0}, "n_users must be at least 1, got 0"),
        ({"dim": 0}, "dim must be at least 1, got 0"),
        ({"popularity_skew": -1.0}, "popularity_skew must be non-negative, got -1.0"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_synthetic(**kwargs)  # type: ignore[arg-type]
