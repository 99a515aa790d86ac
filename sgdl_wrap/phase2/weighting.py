"""The weighting function ``g(L; psi)``: loss -> sample weight in (0, 1) (SGDL eq. 5)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["WeightNet"]


class WeightNet(nn.Module):
    """One-hidden-layer MLP with ReLU and a sigmoid output, fed the detached loss.

    Args:
        hidden: hidden units (paper: 64, authors' code: 100).
    """

    def __init__(self, hidden: int = 100) -> None:
        super().__init__()
        if hidden <= 0:
            raise ValueError(f"hidden size must be positive, got {hidden}")
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, losses: Tensor) -> Tensor:
        """``[B]`` per-sample losses (detached here) -> ``[B]`` weights in ``(0, 1)``."""
        return torch.sigmoid(self.net(losses.detach().unsqueeze(-1))).squeeze(-1)
