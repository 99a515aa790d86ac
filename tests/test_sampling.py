import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdl_wrap import (
    Interactions,
    PopularityNegativeSampler,
    UniformNegativeSampler,
    iterate_batches,
)


def _random_interactions(seed, n_users=20, n_items=30, density=0.4):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    return Interactions(users, items, n_users, n_items)


@given(st.integers(0, 10_000), st.integers(0, 5))
@settings(max_examples=30, deadline=None)
def test_samplers_never_return_a_positive(seed, k):
    data = _random_interactions(seed)
    users = np.random.default_rng(seed).integers(0, data.n_users, 50)
    for sampler in (UniformNegativeSampler(data), PopularityNegativeSampler(data)):
        negatives = sampler.sample(users, k, np.random.default_rng(seed))
        assert negatives.shape == (50, k)
        assert not data.contains(np.repeat(users[:, None], k, 1), negatives).any()


def test_popularity_sampler_follows_item_popularity():
    users = np.repeat(np.arange(200), 2)
    items = np.tile([0, 1], 200)
    # Items 2..4 are liked by extra users 200..(200+n) with popularity 1, 2 and 4.
    extra_users, extra_items = [], []
    for item, count in ((2, 100), (3, 200), (4, 400)):
        extra_users += list(range(200, 200 + count))
        extra_items += [item] * count
    data = Interactions(np.r_[users, extra_users], np.r_[items, extra_items], 600, 5)
    drawn = PopularityNegativeSampler(data).sample(
        np.zeros(70_000, dtype=np.int64), 1, np.random.default_rng(0)
    )
    share = np.bincount(drawn.ravel(), minlength=5)[2:] / drawn.size
    np.testing.assert_allclose(share, [1 / 7, 2 / 7, 4 / 7], atol=0.01)


def test_uniform_sampler_is_uniform_over_non_positives():
    data = Interactions([0, 0], [0, 3], 1, 6)
    drawn = UniformNegativeSampler(data).sample(np.zeros(40_000, np.int64), 1,
                                                np.random.default_rng(1))
    share = np.bincount(drawn.ravel(), minlength=6) / drawn.size
    np.testing.assert_allclose(share, [0, 0.25, 0.25, 0, 0.25, 0.25], atol=0.01)


def test_sampler_errors_name_the_problem():
    full = Interactions([0, 0, 1], [0, 1, 0], 2, 2)
    sampler = UniformNegativeSampler(full)
    with pytest.raises(ValueError, match="user 0 has no item left"):
        sampler.sample(np.array([0, 1]), 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="user id 5 is out of range"):
        sampler.sample(np.array([5]), 1, np.random.default_rng(0))
    assert sampler.sample(np.array([0]), 0, np.random.default_rng(0)).shape == (1, 0)


def test_batches_cover_every_row_once_and_are_seeded():
    data = _random_interactions(3)
    sampler = UniformNegativeSampler(data)

    def epoch(seed):
        return list(iterate_batches(data, 16, sampler, 2, np.random.default_rng(seed)))

    batches = epoch(0)
    rows = np.concatenate([b.rows.numpy() for b in batches])
    assert sorted(rows.tolist()) == list(range(len(data)))
    first = batches[0]
    assert first.candidates.shape == (16, 3)
    assert (first.users.numpy() == data.users[first.rows.numpy()]).all()
    assert (first.items.numpy() == data.items[first.rows.numpy()]).all()
    again = epoch(0)
    assert all((a.negatives == b.negatives).all() for a, b in zip(batches, again))
