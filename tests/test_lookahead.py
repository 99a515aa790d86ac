"""The functional look-ahead and the meta-gradient it carries (float64 checks)."""

import copy

import torch
from torch.func import functional_call

from sgdl_wrap.adapters.losses import BCELoss, BPRLoss
from sgdl_wrap.phase2.functional import lookahead, trainable_parameters
from sgdl_wrap.phase2.weighting import WeightNet
from toy_models import TinyMF


def _setup(seed=0, batch=6):
    torch.manual_seed(seed)
    model = TinyMF(5, 7, dim=3).double()
    weight_net = WeightNet(4).double()
    users = torch.randint(0, 5, (batch,))
    candidates = torch.randint(0, 7, (batch, 2))
    meta_users = torch.randint(0, 5, (batch,))
    meta_candidates = torch.randint(0, 7, (batch, 2))
    return model, weight_net, (users, candidates), (meta_users, meta_candidates)


def _losses(model, params, users, candidates):
    return BPRLoss()(functional_call(model, params, (users, candidates)))


def test_lookahead_equals_a_real_sgd_step_and_leaves_the_model_alone():
    model, weight_net, (u, c), _ = _setup()
    params = trainable_parameters(model)
    before = {n: p.detach().clone() for n, p in params.items()}
    losses = _losses(model, params, u, c)
    objective = (weight_net(losses) * losses).mean()
    theta_hat = lookahead(objective, params, lr=0.1)

    twin = copy.deepcopy(model)
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
    twin_losses = BPRLoss()(twin(u, c))
    (weight_net(twin_losses).detach() * twin_losses).mean().backward()
    optimizer.step()
    for name, p in twin.named_parameters():
        torch.testing.assert_close(theta_hat[name], p)
        torch.testing.assert_close(params[name].detach(), before[name])
        assert params[name].grad is None


def _meta_loss(model, weight_net, batch, meta_batch, lr, psi=None):
    params = trainable_parameters(model)
    losses = _losses(model, params, *batch)
    weights = weight_net(losses) if psi is None else functional_call(weight_net, psi, (losses,))
    theta_hat = lookahead((weights * losses).mean(), params, lr)
    return _losses(model, theta_hat, *meta_batch).mean()


def test_meta_gradient_passes_gradcheck():
    model, weight_net, batch, meta_batch = _setup(1)
    names = [n for n, _ in weight_net.named_parameters()]
    values = tuple(p.detach().clone().requires_grad_() for p in weight_net.parameters())

    def meta(*psi):
        return _meta_loss(model, weight_net, batch, meta_batch, 0.5, dict(zip(names, psi)))

    assert torch.autograd.gradcheck(meta, values)


def test_meta_gradient_matches_the_hand_derived_identity():
    # dL/dpsi = -(lr/B) sum_i <grad l_i(theta), grad L_meta(theta')> dw_i/dpsi
    model, weight_net, batch, meta_batch = _setup(2)
    lr, size = 0.3, batch[0].shape[0]
    psi = list(weight_net.parameters())
    meta = _meta_loss(model, weight_net, batch, meta_batch, lr)
    autograd_side = torch.autograd.grad(meta, psi)

    params = trainable_parameters(model)
    losses = _losses(model, params, *batch)
    weights = weight_net(losses)
    theta_hat = lookahead((weights * losses).mean(), params, lr)
    meta_grad = torch.autograd.grad(_losses(model, theta_hat, *meta_batch).mean(),
                                    list(theta_hat.values()))
    hand_side = [torch.zeros_like(p) for p in psi]
    for i in range(size):
        grads = torch.autograd.grad(losses[i], list(params.values()), retain_graph=True)
        inner = sum((g * m).sum() for g, m in zip(grads, meta_grad))
        weight_grads = torch.autograd.grad(weights[i], psi, retain_graph=True)
        for total, dw in zip(hand_side, weight_grads):
            total -= lr / size * inner * dw
    for a, b in zip(autograd_side, hand_side):
        torch.testing.assert_close(a, b)


def test_meta_gradient_identity_with_one_weight_per_candidate():
    # Pointwise samples weighed one by one: the sum runs over every (row, candidate) term.
    model, weight_net, batch, meta_batch = _setup(3)
    lr, size = 0.3, batch[0].shape[0]
    psi = list(weight_net.parameters())
    params = trainable_parameters(model)
    terms = BCELoss(1).candidate_losses(functional_call(model, params, batch))
    weights = weight_net(terms)
    theta_hat = lookahead((weights * terms).sum(dim=1).mean(), params, lr)
    meta = BCELoss(1)(functional_call(model, theta_hat, meta_batch)).mean()
    autograd_side = torch.autograd.grad(meta, psi, retain_graph=True)
    meta_grad = torch.autograd.grad(meta, list(theta_hat.values()))
    hand_side = [torch.zeros_like(p) for p in psi]
    for i in range(size):
        for c in range(terms.shape[1]):
            grads = torch.autograd.grad(terms[i, c], list(params.values()), retain_graph=True)
            inner = sum((g * m).sum() for g, m in zip(grads, meta_grad))
            weight_grads = torch.autograd.grad(weights[i, c], psi, retain_graph=True)
            for total, dw in zip(hand_side, weight_grads):
                total -= lr / size * inner * dw
    for a, b in zip(autograd_side, hand_side):
        torch.testing.assert_close(a, b)
