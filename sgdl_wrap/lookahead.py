"""The differentiable assumed update (SGDL eq. 7), done functionally.

``theta_hat = theta - lr * grad_theta objective`` is built with
``torch.autograd.grad(create_graph=True)``, so ``theta_hat`` stays a function of whatever the
objective depends on (the weighting net's parameters). Nothing is copied and no parameter is
modified: the model is evaluated at ``theta_hat`` with ``torch.func.functional_call``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["lookahead", "trainable_parameters"]


def trainable_parameters(model: nn.Module) -> dict[str, Tensor]:
    """The model's parameters that require gradients, by name."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def lookahead(
    objective: Tensor, params: Mapping[str, Tensor], lr: float, *, create_graph: bool = True
) -> dict[str, Tensor]:
    """One plain SGD step on ``objective``, differentiable w.r.t. what it depends on.

    Args:
        objective: scalar to descend.
        params: the parameters to step, by name.
        lr: step size ``eta_1``.
        create_graph: keep the graph of the gradient (needed for the meta-gradient).

    Returns:
        ``{name: theta - lr * grad}``; a parameter the objective does not reach is returned
        unchanged. The graph of ``objective`` is retained for a later ``backward()``.
    """
    if objective.dim() != 0:
        raise ValueError(f"the look-ahead objective must be a scalar, got {tuple(objective.shape)}")
    names = list(params)
    grads = torch.autograd.grad(
        objective,
        [params[n] for n in names],
        create_graph=create_graph,
        retain_graph=True,
        allow_unused=True,
    )
    return {
        name: params[name] if grad is None else params[name] - lr * grad
        for name, grad in zip(names, grads)
    }
