"""Per-sample gradient strategies against the exact loop oracle."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgdl_wrap import SGDLConfig, SGDLWrapper
from sgdl_wrap.adapters import CDAE, NGCF, BCELoss, BPRLoss, LightGCN, NeuMF
from sgdl_wrap.benchmarks.studies.custom_models import TowerMLP
from sgdl_wrap.data.datasets import make_synthetic
from sgdl_wrap.phase2.features import (
    LinearFactor,
    RowFactor,
    factor_cosines,
    loop_cosines,
    loss_gradients,
)
from sgdl_wrap.phase2.functional import call_at, trainable_parameters
from sgdl_wrap.phase2.gradient_check import check_gradient_factors, gradient_factor_agreement
from test_adapter_contract import tiny_interactions
from toy_models import FactoredMF, TinyMF

TRAIN = tiny_interactions(n_users=12, n_items=15, n=60, seed=4)

# Graph models are exact only without propagation; with it, see test_graph_factors_*.
# Each model with where its factors come from: its hook, or recorded from its modules.
EXACT_MODELS = {
    "neumf": (lambda: NeuMF(TRAIN.n_users, TRAIN.n_items, factors=4, mlp_layers=3), "hook"),
    "cdae": (lambda: CDAE(TRAIN, hidden=6), "hook"),
    "lightgcn-0": (lambda: LightGCN(TRAIN, dim=5, layers=0), "hook"),
    "ngcf-0": (lambda: NGCF(TRAIN, dim=5, layers=0), "hook"),
    "factored-mf": (lambda: FactoredMF(TRAIN.n_users, TRAIN.n_items, dim=4), "hook"),
    "recorded-mf": (lambda: TinyMF(TRAIN.n_users, TRAIN.n_items, dim=4), "modules"),
    "recorded-tower": (lambda: TowerMLP(TRAIN.n_users, TRAIN.n_items, dim=4, hidden=5),
                       "modules"),
}
# 1e-6 for recorded factors: a sample whose ReLU-layer gradient cancels to rounding noise
# has a cosine of noise (see the adapter contract); a wrong factor is off by far more.
EXACT_ATOL = {"hook": 1e-8, "modules": 1e-6}


@pytest.mark.parametrize("name", sorted(EXACT_MODELS))
@pytest.mark.parametrize("num_negatives", [1, 3])
@pytest.mark.parametrize("loss_cls", [BCELoss, BPRLoss])
@given(data=st.data())
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_exact_factors_equal_the_loop(name, num_negatives, loss_cls, data):
    batch_size = data.draw(st.integers(1, 9), label="batch size")
    # A small id pool makes repeated users, items and whole samples likely.
    users = data.draw(st.lists(st.integers(0, 3), min_size=batch_size, max_size=batch_size))
    items = data.draw(
        st.lists(
            st.lists(st.integers(0, 5), min_size=1 + num_negatives, max_size=1 + num_negatives),
            min_size=batch_size,
            max_size=batch_size,
        )
    )
    torch.manual_seed(data.draw(st.integers(0, 100), label="init seed"))
    build, source = EXACT_MODELS[name]
    agreement = check_gradient_factors(
        build().double(), loss_cls(num_negatives), torch.tensor(users), torch.tensor(items),
        atol=EXACT_ATOL[source], source=source,
    )
    assert all(agreement.exact.values())
    assert agreement.uncovered == []


@pytest.mark.parametrize("model_cls", [LightGCN, NGCF])
def test_graph_factors_are_marked_approximate(model_cls):
    torch.manual_seed(0)
    model = model_cls(TRAIN, dim=5, layers=2).double()
    users = torch.tensor([0, 1, 1, 5])
    items = torch.tensor([[0, 3], [2, 3], [2, 3], [7, 1]])
    agreement = gradient_factor_agreement(model, BPRLoss(), users, items)
    assert not any(agreement.exact.values())
    assert agreement.names == ["item_embedding", "user_embedding"]
    # How closely they track the loop is measured in benchmarks/per_sample_agreement.py.
    assert torch.isfinite(agreement.factor).all()
    assert ((agreement.factor >= -1 - 1e-9) & (agreement.factor <= 1 + 1e-9)).all()


@pytest.mark.parametrize("name", ["neumf", "cdae"])
def test_a_joint_forward_part_equals_a_separate_forward(name):
    torch.manual_seed(0)
    model = EXACT_MODELS[name][0]().double().eval()
    loss = BCELoss(1)
    # The joint forward's extra users have other degrees (CDAE pads its inputs to the
    # largest degree in the call).
    by_degree = np.argsort(np.bincount(TRAIN.users, minlength=TRAIN.n_users), kind="stable")
    users = torch.from_numpy(np.concatenate([by_degree[-2:], by_degree[:3]]))
    items = torch.tensor([[0, 4], [1, 5], [2, 2], [3, 1], [1, 5]])
    params = trainable_parameters(model)
    hat = {n: (p.detach() + 0.1).requires_grad_() for n, p in params.items()}
    scores_hat, factors_hat = call_at(model, "per_sample_factors", hat, users[2:], items[2:])
    losses_hat = loss(scores_hat)
    scores, factors = model.per_sample_factors(users, items)
    joint = factor_cosines(loss(scores), factors, losses_hat, factors_hat, theta_part=slice(2, 5))
    scores, factors = model.per_sample_factors(users[2:], items[2:])
    separate = factor_cosines(loss(scores), factors, losses_hat, factors_hat)
    torch.testing.assert_close(joint, separate)


def test_loss_gradients_hold_each_samples_own_gradient():
    torch.manual_seed(0)
    model = NeuMF(TRAIN.n_users, TRAIN.n_items, factors=4, mlp_layers=2).double()
    users, items = torch.tensor([0, 3, 3]), torch.tensor([[1, 2], [4, 2], [4, 2]])
    scores, factors = model.per_sample_factors(users, items)
    losses = BPRLoss()(scores)
    gradients = loss_gradients(losses, factors)
    assert sorted(gradients) == sorted(factors)
    for name, factor in factors.items():
        target = factor.rows if isinstance(factor, RowFactor) else factor.outputs
        for b in range(3):
            (own,) = torch.autograd.grad(losses[b], target, retain_graph=True)
            torch.testing.assert_close(gradients[name][b], own[b])
            assert not own[torch.arange(3) != b].any()  # sample b reaches only entry b


def test_factor_cosines_rejects_mismatched_names():
    rows = torch.ones(2, 3, requires_grad=True)
    losses = rows.sum(dim=1)
    with pytest.raises(ValueError, match="factor names differ"):
        factor_cosines(losses, {"a": RowFactor(rows)}, losses, {"b": RowFactor(rows)})


def test_linear_factor_matches_a_hand_computed_gradient():
    x = torch.tensor([[1.0, 2.0], [0.0, -1.0]], dtype=torch.float64)
    weight = torch.tensor([[0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    outputs = x @ weight.T  # [2, 1]
    losses = (outputs.squeeze(1) ** 2) / 2  # per-sample gradient: outputs * x
    cosines = factor_cosines(
        losses, {"w": LinearFactor(outputs, x)}, losses, {"w": LinearFactor(outputs, x)}
    )
    torch.testing.assert_close(cosines, torch.ones(2, 1, dtype=torch.float64))
    flipped = -(outputs.squeeze(1) ** 2) / 2  # gradient of the opposite sign
    opposite = factor_cosines(
        losses, {"w": LinearFactor(outputs, x)}, flipped, {"w": LinearFactor(outputs, x)}
    )
    torch.testing.assert_close(opposite, -torch.ones(2, 1, dtype=torch.float64))


def test_loop_cosines_of_a_point_with_itself_are_one():
    torch.manual_seed(0)
    model = TinyMF(5, 6, dim=3).double()
    params = trainable_parameters(model)
    users, items = torch.tensor([0, 1, 4]), torch.tensor([[0, 1], [2, 3], [5, 0]])

    def losses_at(point):
        return BPRLoss()(call_at(model, "score", point, users, items))

    cosines = loop_cosines(losses_at, params, params)
    torch.testing.assert_close(cosines, torch.ones(3, 2, dtype=torch.float64))


@pytest.mark.parametrize("strategy, build, make_loss", [
    ("factors", lambda n_users, n_items: FactoredMF(n_users, n_items, dim=6), BPRLoss),
    ("modules", lambda n_users, n_items: TowerMLP(n_users, n_items, dim=5, hidden=6),
     lambda: BCELoss(1)),
])
def test_fast_and_loop_strategies_train_alike(strategy, build, make_loss):
    data = make_synthetic(n_users=40, n_items=50, interactions_per_user=8, seed=1)

    def train(per_sample_gradients):
        torch.manual_seed(0)
        model = build(data.train.n_users, data.train.n_items).double()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        config = SGDLConfig(history=1, switch_epoch=0, seed=0,
                            per_sample_gradients=per_sample_gradients)
        sgdl = SGDLWrapper(model, make_loss(), train=data.train, config=config)
        for _ in range(2):
            for batch in sgdl.batches(32):
                sgdl.step(batch, optimizer)
            sgdl.end_epoch()
        return model, sgdl

    fast, with_fast = train(strategy)
    looped, with_loop = train("loop")
    assert with_fast.per_sample_strategy == strategy
    assert with_loop.per_sample_strategy == "loop"
    for a, b in zip(fast.parameters(), looped.parameters()):
        torch.testing.assert_close(a, b)
    np.testing.assert_allclose(with_fast.sample_weights(), with_loop.sample_weights())
