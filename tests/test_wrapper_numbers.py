"""The wrapper's numbers against values computed here independently of ``sgdl_wrap``'s code
(float64): each test fails on a realistic single-line slip that leaves training running."""

import numpy as np
import pytest
import torch

from oracles import (
    FixedNegatives,
    batch_of,
    detached_parameters,
    losses_at,
    meta_gradient,
    sgd_step,
)
from sgdl_wrap import SGDLConfig, SGDLWrapper
from sgdl_wrap.adapters import CDAE
from sgdl_wrap.adapters.losses import BCELoss, BPRLoss
from sgdl_wrap.data.datasets import make_synthetic
from sgdl_wrap.phase2.scheduler import DenoisingScheduler
from sgdl_wrap.phase2.weighting import WeightNet
from toy_models import TinyMF


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=30, n_items=40, interactions_per_user=6, seed=2)


def _wrapper(data, loss=None, **settings):
    torch.manual_seed(0)
    model = TinyMF(data.train.n_users, data.train.n_items, dim=4).double()
    config = SGDLConfig(**{"history": 1, "seed": 0, **settings})
    sgdl = SGDLWrapper(model, loss or BPRLoss(), train=data.train, config=config)
    sgdl.sampler = FixedNegatives(data.train.n_items)
    return model, sgdl


def test_phase_two_steps_at_the_full_learning_rate(data):
    model, sgdl = _wrapper(data, phase1_lr_factor=0.2, weighting="uniform")
    sgdl.start_self_guided(np.arange(len(data.train)) < 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = batch_of(data.train, range(10))
    params = detached_parameters(model)
    expected = sgd_step(params, losses_at(model, BPRLoss(), params, batch).mean(), 0.5)
    sgdl.step(batch, optimizer)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name])


@pytest.mark.parametrize("loss", [BPRLoss(), BCELoss(2)], ids=["bpr", "bce"])
def test_the_meta_gradient_and_the_weighted_step_equal_an_independent_computation(data, loss):
    # One memorized row: the memorized batch is that row, drawn memorized_batch_size times.
    model, sgdl = _wrapper(data, loss, scheduler="none", memorized_batch_size=5, meta_lr=0.01)
    memorized_row = 4
    sgdl.start_self_guided(np.arange(len(data.train)) == memorized_row)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # As an LR scheduler would: the current rate differs from the optimizer's default.
    optimizer.param_groups[0]["lr"] = lr = 0.3
    batch = batch_of(data.train, [0, 5, 9, 13, 21, 30], k=loss.num_negatives)
    meta_batch = batch_of(data.train, [memorized_row] * 5, k=loss.num_negatives)
    expected_gradient = meta_gradient(model, loss, sgdl.weight_net, batch, meta_batch, lr)
    params = detached_parameters(model)
    losses = losses_at(model, loss, params, batch)
    sgdl.step(batch, optimizer)
    for name, p in sgdl.weight_net.named_parameters():
        assert expected_gradient[name].abs().sum() > 0, name
        torch.testing.assert_close(p.grad, expected_gradient[name], msg=name)
    # The model then takes one SGD step on the loss weighted by the updated net.
    new_weights = sgdl.weight_net(losses.detach()).detach()
    expected_model = sgd_step(params, (new_weights * losses).mean(), lr)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected_model[name])


def test_the_memorization_pass_scores_in_eval_mode(data):
    torch.manual_seed(0)
    model = CDAE(data.train, hidden=8, dropout=0.5).double()
    sgdl = SGDLWrapper(model, BCELoss(1), train=data.train,
                       config=SGDLConfig(history=1, seed=0))
    sgdl.sampler = FixedNegatives(data.train.n_items)
    model.train()
    sgdl.end_epoch()
    assert model.training
    model.eval()
    train = data.train
    negatives = FixedNegatives(train.n_items).sample(train.users, 1, None)
    candidates = torch.from_numpy(np.concatenate([train.items[:, None], negatives], axis=1))
    with torch.no_grad():
        scores = model.score(torch.tensor(train.users), candidates).numpy()
    positive, negative = scores[:, 0], scores[:, 1]
    expected_losses = np.logaddexp(0, -positive) + np.logaddexp(0, negative)
    np.testing.assert_allclose(sgdl.last_losses, expected_losses, rtol=1e-10)
    # A row is memorized when its positive is in its user's top N_u of the user's N_u
    # positives and N_u sampled negatives (a positive wins a tie).
    expected_marks = np.zeros(len(train), dtype=bool)
    for user in np.unique(train.users):
        rows = np.flatnonzero(train.users == user)
        pool = np.concatenate([negative[rows], positive[rows]])
        for row in rows:
            expected_marks[row] = (pool > positive[row]).sum() < rows.size
    np.testing.assert_array_equal(sgdl.memorized, expected_marks)


@pytest.mark.parametrize("tau", [0.05, 1.0, 4.0])
def test_the_gumbel_softmax_divides_by_its_temperature(tau):
    torch.manual_seed(0)
    scheduler = DenoisingScheduler("mlp", 3, hidden=4, tau=tau).double()
    losses, cosines = torch.rand(6, dtype=torch.float64), torch.rand(6, 3, dtype=torch.float64)
    probe = torch.arange(6, dtype=torch.float64)
    selection = scheduler.select(losses, cosines, 4, torch.Generator().manual_seed(3))
    (selection.counts * probe).sum().backward()
    got = [p.grad.clone() for p in scheduler.parameters()]

    scheduler.zero_grad()
    logits = scheduler.logits(losses, cosines)
    uniform = torch.rand((4, 6), generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    gumbel = -torch.log(-torch.log(uniform.double().clamp(1e-20, 1.0 - 1e-7)))
    soft = torch.softmax((torch.log_softmax(logits, 0) + gumbel) / tau, dim=1)
    np.testing.assert_array_equal(
        selection.counts.detach().numpy(),
        np.bincount(soft.argmax(dim=1).numpy(), minlength=6).astype(float))
    (soft.sum(dim=0) * probe).sum().backward()
    for a, p in zip(got, scheduler.parameters()):
        torch.testing.assert_close(a, p.grad)


def test_the_weighting_net_sees_the_loss_and_outputs_a_sigmoid():
    torch.manual_seed(0)
    net = WeightNet(3).double()
    losses = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
    (w1, b1), (w2, b2) = [(m.weight, m.bias) for m in (net.net[0], net.net[2])]
    hidden = torch.relu(losses[:, None] @ w1.T + b1)
    expected = torch.sigmoid(hidden @ w2.T + b2).squeeze(-1)
    torch.testing.assert_close(net(losses), expected)
