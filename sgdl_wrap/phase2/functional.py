"""The model evaluated at other parameters, and the differentiable assumed update (SGDL eq. 7).

``theta_hat = theta - lr * grad_theta objective`` is built with
``torch.autograd.grad(create_graph=True)``, so ``theta_hat`` stays a function of whatever the
objective depends on (the weighting net's parameters). Nothing is copied and no parameter is
modified: the model is evaluated at ``theta_hat`` with ``torch.func.functional_call``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["call_at", "lookahead", "trainable_parameters"]


def trainable_parameters(model: nn.Module) -> dict[str, Tensor]:
    """The model's parameters that require gradients, by name."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


class _MethodCall(nn.Module):
    """Lets ``functional_call`` run any method of the wrapped model, not only ``forward``."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, *args: Any) -> Any:
        return getattr(self.model, self.method)(*args)


def call_at(model: nn.Module, method: str, params: Mapping[str, Tensor], *args: Any) -> Any:
    """``model.<method>(*args)`` evaluated with ``params`` (by name) in place of the model's
    own parameters, through ``torch.func.functional_call``; the model is not modified."""
    return functional_call(
        _MethodCall(model, method), {f"model.{name}": p for name, p in params.items()}, args
    )


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
