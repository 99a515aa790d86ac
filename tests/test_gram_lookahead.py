"""The look-ahead through LightGCN's propagation Gram equals the functional look-ahead."""

import pickle

import pytest
import torch

import sgdl_wrap.adapters.lightgcn
from sgdl_wrap import SGDLConfig, SGDLWrapper
from sgdl_wrap.adapters import LightGCN
from sgdl_wrap.adapters.losses import BCELoss, BPRLoss
from sgdl_wrap.data.datasets import make_synthetic
from sgdl_wrap.phase2.functional import call_at, lookahead, trainable_parameters
from sgdl_wrap.phase2.points import GramBlock, shifted_rows


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=30, n_items=40, interactions_per_user=6, seed=3)


def _model(data, layers=2):
    torch.manual_seed(0)
    return LightGCN(data.train, dim=6, layers=layers).double()


def test_gram_is_the_square_of_the_propagation(data):
    model = _model(data)
    gram = model.propagation_gram()
    nodes = data.train.n_users + data.train.n_items
    assert gram.shape == (nodes, nodes) and gram.dtype == torch.float64
    x = torch.randn(nodes, 3, dtype=torch.float64)
    propagated = model._propagate(model._propagate(x, model.adjacency.matmul),
                                  model.adjacency.matmul)
    torch.testing.assert_close(gram @ x, propagated)  # P is symmetric: P P^T = P^2
    assert model.propagation_gram() is gram
    assert model.float().propagation_gram().dtype == torch.float32


def test_a_pickled_model_leaves_its_gram_out_and_rebuilds_the_same(data):
    model = _model(data)
    gram = model.propagation_gram()
    restored = pickle.loads(pickle.dumps(model))
    assert restored._gram is None and model.propagation_gram() is gram
    assert torch.equal(restored.propagation_gram(), gram)
    assert len(pickle.dumps(model)) < gram.numel() * gram.element_size()


def test_no_gram_above_the_node_limit(data, monkeypatch):
    monkeypatch.setattr(sgdl_wrap.adapters.lightgcn, "GRAM_MAX_NODES", 10)
    assert _model(data).propagation_gram() is None


def test_a_gram_block_holds_the_columns_of_any_source(data):
    model = _model(data)
    gram = model.propagation_gram()
    generator = torch.Generator().manual_seed(2)
    users = torch.randint(0, model.n_users, (6,), generator=generator)
    items = torch.randint(0, model.n_items, (6, 3), generator=generator)

    def nodes(part):
        return torch.cat([users[part], items[part].reshape(-1) + model.n_users])

    block = GramBlock(gram, model.n_users, users, items, target=slice(4, 6))
    for source in (slice(0, 4), slice(4, 6), slice(1, 3), slice(None)):
        assert torch.equal(block.columns(source), gram[nodes(slice(4, 6))][:, nodes(source)])
    with pytest.raises(ValueError, match="contiguous slice, got step 2"):
        block.columns(slice(0, 6, 2))
    narrow = GramBlock(gram, model.n_users, users, items, target=slice(4, 6),
                       sources=slice(1, 4))
    assert narrow.block.shape == (2 * 4, 3 * 4)
    for source in (slice(1, 4), slice(2, 3), slice(1, 2)):
        assert torch.equal(narrow.columns(source), gram[nodes(slice(4, 6))][:, nodes(source)])
    with pytest.raises(ValueError, match="samples 0:4 lie outside the gathered columns' "
                                         "samples 1:4"):
        narrow.columns(slice(0, 4))


@pytest.mark.parametrize("loss", [BPRLoss(), BCELoss(3)])
def test_shifted_rows_equal_the_functional_step(data, loss):
    model = _model(data)
    generator = torch.Generator().manual_seed(1)
    users = torch.randint(0, data.train.n_users, (12,), generator=generator)
    users[7] = users[2]  # repeated ids across the two parts
    items = torch.randint(0, data.train.n_items, (12, 1 + loss.num_negatives),
                          generator=generator)
    items[9, 0] = items[1, 0]
    source, target = slice(0, 7), slice(7, 12)
    weights = torch.rand(7, dtype=torch.float64, requires_grad=True)
    scores, factors = model.per_sample_factors(users, items)
    objective = (weights * loss(scores[source])).mean()
    block = GramBlock(model.propagation_gram(), model.n_users, users, items, target)
    rows = [factors["user_embedding"].rows, factors["item_embedding"].rows]
    grad_users, grad_items = torch.autograd.grad(objective, rows, create_graph=True)
    user_rows, item_rows = shifted_rows(
        block, *rows, grad_users[source], grad_items[source], 0.7, source=source
    )
    theta_hat = lookahead(objective, trainable_parameters(model), 0.7)
    _, factors_hat = call_at(model, "per_sample_factors", theta_hat, users[target],
                             items[target])
    torch.testing.assert_close(user_rows, factors_hat["user_embedding"].rows)
    torch.testing.assert_close(item_rows, factors_hat["item_embedding"].rows)
    meta = (user_rows.unsqueeze(1) * item_rows).sum(-1).pow(2).sum()
    meta_functional = (
        factors_hat["user_embedding"].rows.unsqueeze(1) * factors_hat["item_embedding"].rows
    ).sum(-1).pow(2).sum()
    (through_gram,) = torch.autograd.grad(meta, weights, retain_graph=True)
    (functional,) = torch.autograd.grad(meta_functional, weights)
    torch.testing.assert_close(through_gram, functional)


def _phase_two(data, loss, steps=4, **config):
    torch.manual_seed(0)
    model = LightGCN(data.train, dim=6, layers=2).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    settings = dict(history=2, switch_epoch=0, seed=0, phase1_lr_factor=1.0)
    settings.update(config)
    sgdl = SGDLWrapper(model, loss, train=data.train, config=SGDLConfig(**settings))
    for batch in sgdl.batches(32):
        sgdl.step(batch, optimizer)
    sgdl.end_epoch()
    objectives = []
    for batch, _ in zip(sgdl.batches(32), range(steps)):
        objectives.append(sgdl.step(batch, optimizer))
    return sgdl, model, objectives


@pytest.mark.parametrize(
    "loss, config",
    [
        (BPRLoss(), {}),
        (BPRLoss(), {"feature_lookahead": "memorized"}),
        (BPRLoss(), {"scheduler": "none"}),
        (BCELoss(2), {"weight_candidates": True, "scheduler": "mlp"}),
    ],
)
def test_wrapper_through_the_gram_matches_the_functional_wrapper(data, loss, config):
    gram_run, gram_model, gram_objectives = _phase_two(data, loss, **config)
    plain_run, plain_model, plain_objectives = _phase_two(data, loss, lookahead="functional",
                                                          **config)
    assert gram_run.lookahead_strategy == "gram"
    assert plain_run.lookahead_strategy == "functional"
    torch.testing.assert_close(gram_objectives, plain_objectives)
    for a, b in zip(gram_run.weight_net.parameters(), plain_run.weight_net.parameters()):
        torch.testing.assert_close(a, b)
    for a, b in zip(gram_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b)


def test_a_gram_lookahead_needs_a_model_that_offers_one(data, monkeypatch):
    with pytest.raises(TypeError, match="propagation_gram"):
        _phase_two(data, BPRLoss(), per_sample_gradients="loop", lookahead="gram")
    monkeypatch.setattr(sgdl_wrap.adapters.lightgcn, "GRAM_MAX_NODES", 10)
    with pytest.raises(RuntimeError, match="no propagation Gram for its 30 users"):
        _phase_two(data, BPRLoss(), lookahead="gram")
    sgdl, _, _ = _phase_two(data, BPRLoss(), steps=1)
    assert sgdl.lookahead_strategy == "functional"
