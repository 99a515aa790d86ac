import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdl_wrap import Interactions, UniformNegativeSampler
from sgdl_wrap.adapters.losses import BCELoss, BPRLoss
from sgdl_wrap.phase1.memorization import memorization_pass
from toy_models import TableModel


def _data(seed, n_users=7, n_items=25):
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.3)
    return Interactions(users, items, n_users, n_items), rng.permutation(n_users * n_items)


@given(st.integers(0, 10_000), st.sampled_from([1, 100, 4096]))
@settings(max_examples=30, deadline=None)
def test_full_ranking_test_marks_the_users_top_n(seed, batch_size):
    train, flat = _data(seed)
    if len(train) == 0:
        return
    table = flat.reshape(train.n_users, train.n_items).astype(float)
    result = memorization_pass(TableModel(table), BPRLoss(), train, UniformNegativeSampler(train),
                               np.random.default_rng(0), test="full", batch_size=batch_size,
                               user_batch_size=3)
    for row in range(len(train)):
        u, i = train.users[row], train.items[row]
        n_u = (train.users == u).sum()
        top = set(np.argsort(-table[u])[:n_u].tolist())
        assert result.marks[row] == (i in top)


@given(st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_sampled_test_ranks_positives_against_as_many_negatives(seed):
    train, flat = _data(seed)
    if len(train) == 0:
        return
    table = flat.reshape(train.n_users, train.n_items).astype(float)
    sampler = UniformNegativeSampler(train)
    result = memorization_pass(TableModel(table), BCELoss(1), train, sampler,
                               np.random.default_rng(seed), test="sampled", batch_size=5)
    negatives = sampler.sample(train.users, 1, np.random.default_rng(seed))[:, 0]
    for row in range(len(train)):
        u = train.users[row]
        mine = train.users == u
        candidates = np.r_[table[u, train.items[mine]], table[u, negatives[mine]]]
        higher = (candidates > table[u, train.items[row]]).sum()
        assert result.marks[row] == (higher < mine.sum())
    pos = table[train.users, train.items]
    neg = table[train.users, negatives]
    expected = np.logaddexp(0, -pos) + np.logaddexp(0, neg)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-5)


def test_nan_scores_are_reported_with_rows():
    train, _ = _data(0)
    table = np.full((train.n_users, train.n_items), np.nan)
    with pytest.raises(FloatingPointError, match="memorization pass"):
        memorization_pass(TableModel(table), BPRLoss(), train, UniformNegativeSampler(train),
                          np.random.default_rng(0))
