"""SGDL's quantities computed here from their definitions, with none of ``sgdl_wrap``'s
Phase II code: the values the wrapper's results are checked against."""

import numpy as np
import torch
from torch.func import functional_call

from sgdl_wrap import Batch


class FixedNegatives:
    """A deterministic negative sampler, item ``(7 u + 3 j + 1) mod n_items`` for column
    ``j``, that records how many users it was asked to sample for."""

    def __init__(self, n_items):
        self.n_items = n_items
        self.requests = []

    def sample(self, users, k, generator):
        users = np.asarray(users, dtype=np.int64)
        self.requests.append(users.size)
        return (7 * users[:, None] + 3 * np.arange(k)[None, :] + 1) % self.n_items


def batch_of(train, rows, k=1):
    """The training ``rows`` as a :class:`Batch` with :class:`FixedNegatives`' negatives."""
    rows = np.asarray(rows)
    users = train.users[rows]
    negatives = FixedNegatives(train.n_items).sample(users, k, None)
    return Batch(torch.from_numpy(rows), torch.from_numpy(users),
                 torch.from_numpy(train.items[rows]), torch.from_numpy(negatives))


def detached_parameters(module):
    """``{name: leaf copy requiring grad}`` of a module's parameters."""
    return {n: p.detach().clone().requires_grad_() for n, p in module.named_parameters()}


def losses_at(model, loss, params, batch):
    """``[B]`` per-sample losses of ``batch`` with ``params`` in place of the model's."""
    return loss(functional_call(model, params, (batch.users, batch.candidates)))


def sgd_step(params, objective, lr):
    """The detached parameters one plain SGD step on ``objective`` reaches."""
    grads = torch.autograd.grad(objective, list(params.values()))
    return {n: p.detach() - lr * g for (n, p), g in zip(params.items(), grads)}


def meta_gradient(model, loss, net, batch, meta_batch, lr):
    """SGDL eq. 7-8 without a scheduler: the gradient, with respect to the weighting net's
    parameters, of the memorized batch's mean loss at ``theta - lr * grad(mean(w * L))``."""
    psi = detached_parameters(net)
    params = detached_parameters(model)
    losses = losses_at(model, loss, params, batch)
    weights = functional_call(net, psi, (losses.detach(),))
    grads = torch.autograd.grad((weights * losses).mean(), list(params.values()),
                                create_graph=True)
    theta_hat = {n: p - lr * g for (n, p), g in zip(params.items(), grads)}
    meta_loss = losses_at(model, loss, theta_hat, meta_batch).mean()
    return dict(zip(psi, torch.autograd.grad(meta_loss, list(psi.values()))))


def gradient_cosines(model, loss, batch, point):
    """``[B, P]``: per sample, per parameter (sorted by name), the cosine between the
    sample's loss gradient at the model's parameters and at ``point``."""
    names = sorted(n for n, _ in model.named_parameters())

    def per_sample_gradients(params):
        losses = losses_at(model, loss, params, batch)
        return [torch.autograd.grad(losses[b], [params[n] for n in names], retain_graph=True)
                for b in range(len(batch))]

    at_theta = per_sample_gradients(detached_parameters(model))
    at_point = per_sample_gradients({n: p.detach().clone().requires_grad_()
                                     for n, p in point.items()})
    return torch.tensor([
        [float((g * h).sum() / ((g * g).sum() * (h * h).sum()).sqrt()) for g, h in zip(gs, hs)]
        for gs, hs in zip(at_theta, at_point)
    ], dtype=torch.float64)
