import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdl_wrap import Interactions
from sgdl_wrap.metrics import RankingMetrics, evaluate
from toy_models import TableModel


def test_hand_computed_user():
    # Top-5 hits at ranks 1 and 3; 4 relevant items.
    metrics = RankingMetrics(ks=(5,))
    metrics.update(torch.tensor([[1, 0, 1, 0, 0]]), torch.tensor([4]))
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = sum(1 / math.log2(j + 1) for j in range(1, 5))
    result = metrics.compute()
    assert result["recall@5"] == pytest.approx(2 / 4)
    assert result["precision@5"] == pytest.approx(2 / 5)
    assert result["ndcg@5"] == pytest.approx(dcg / idcg)


def test_ideal_dcg_uses_min_of_k_and_relevant_and_skips_empty_users():
    metrics = RankingMetrics(ks=(2, 5))
    metrics.update(torch.tensor([[0, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]),
                   torch.tensor([1, 7, 0]))
    result = metrics.compute()
    # user 0: one relevant item found at rank 2; user 1: 7 relevant, all of top-5 hits.
    assert result["ndcg@2"] == pytest.approx((1 / math.log2(3) + 1.0) / 2)
    assert result["ndcg@5"] == pytest.approx((1 / math.log2(3) + 1.0) / 2)
    assert result["recall@5"] == pytest.approx((1.0 + 5 / 7) / 2)
    assert metrics.num_users == 2


def _reference(table, target, exclude, k):
    """Per-user Python loop, straight from the formulas."""
    recalls, ndcgs, precisions = [], [], []
    for u in range(table.shape[0]):
        relevant = set(target.items[target.users == u].tolist())
        if not relevant:
            continue
        banned = set()
        for other in exclude:
            banned |= set(other.items[other.users == u].tolist())
        order = [i for i in np.argsort(-table[u], kind="stable") if i not in banned][:k]
        hits = [1.0 if i in relevant else 0.0 for i in order]
        dcg = sum(h / math.log2(j + 2) for j, h in enumerate(hits))
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(relevant))))
        recalls.append(sum(hits) / len(relevant))
        precisions.append(sum(hits) / k)
        ndcgs.append(dcg / idcg)
    return np.mean(recalls), np.mean(ndcgs), np.mean(precisions)


def _split(seed, n_users, n_items):
    rng = np.random.default_rng(seed)
    part = rng.integers(0, 4, size=(n_users, n_items))  # 0: train, 1: valid, 2: test, 3: none
    make = lambda p: Interactions(*np.nonzero(part == p), n_users, n_items)  # noqa: E731
    return make(0), make(1), make(2)


@given(st.integers(0, 10_000), st.integers(1, 12), st.integers(8, 30), st.sampled_from([1, 3, 5]))
@settings(max_examples=40, deadline=None)
def test_evaluate_matches_the_reference_loop(seed, n_users, n_items, batch_size):
    train, valid, test = _split(seed, n_users, n_items)
    # Distinct scores so that the ranking is unambiguous.
    table = np.random.default_rng(seed).permutation(n_users * n_items).reshape(n_users, n_items)
    result = evaluate(TableModel(table), test, exclude=[train, valid], ks=(5,),
                      batch_size=batch_size)
    if len(test) == 0:
        assert result["recall@5"] == 0.0
        return
    recall, ndcg, precision = _reference(table, test, [train, valid], 5)
    assert result["recall@5"] == pytest.approx(recall)
    assert result["ndcg@5"] == pytest.approx(ndcg)
    assert result["precision@5"] == pytest.approx(precision)
    for value in result.values():
        assert 0.0 <= value <= 1.0


@given(st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_perfect_ranking_scores_one_and_excluded_items_never_count(seed):
    train, _, test = _split(seed, 6, 20)
    table = np.zeros((6, 20))
    table[test.users, test.items] = 10.0
    table[train.users, train.items] = 100.0  # would dominate unless excluded
    result = evaluate(TableModel(table), test, exclude=[train], ks=(20,))
    if len(test):
        assert result["recall@20"] == pytest.approx(1.0)
        assert result["ndcg@20"] == pytest.approx(1.0)
    # Without the exclusion the training items take the top ranks.
    leaky = evaluate(TableModel(table), train, ks=(20,))
    if len(train):
        assert leaky["recall@20"] == pytest.approx(1.0)


def test_evaluate_restores_training_mode():
    train, _, test = _split(0, 4, 10)
    model = TableModel(np.random.default_rng(0).random((4, 10)))
    model.train()
    evaluate(model, test, exclude=[train])
    assert model.training


def test_mismatched_id_spaces_raise():
    with pytest.raises(ValueError, match="id space"):
        evaluate(TableModel(np.zeros((2, 3))), Interactions([0], [0], 2, 3),
                 exclude=[Interactions([0], [0], 2, 4)])
