"""Compact, JSON-ready records of what SGDL measured, for the paper's Figures 4 and 5."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sgdl_wrap import SGDLWrapper

__all__ = ["loss_histogram", "weight_sample"]


def _split(values: np.ndarray, noisy: np.ndarray | None) -> dict[str, np.ndarray]:
    if noisy is None:
        return {"all": values}
    return {"clean": values[~noisy], "noisy": values[noisy]}


def loss_histogram(wrapper: SGDLWrapper, bins: int = 40) -> dict[str, Any]:
    """Histogram of the last epoch's per-user-normalised losses (clean and noisy rows apart
    when the data has noisy flags) with the fitted two-component mixture (Fig. 4)."""
    normalized, estimate = wrapper.last_normalized_losses, wrapper.last_noise_estimate
    if normalized is None or estimate is None:
        raise RuntimeError("no epoch has ended yet: call end_epoch() first")
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = {name: np.histogram(values, edges)[0].tolist()
              for name, values in _split(normalized, wrapper.train_data.noisy).items()}
    return {
        "epoch": wrapper.epoch - 1, "edges": edges.tolist(), "counts": counts,
        "noise_rate": estimate.rate, "means": estimate.means, "stds": estimate.stds,
        "weights": estimate.weights,
    }


def weight_sample(
    wrapper: SGDLWrapper, losses: np.ndarray, weights: np.ndarray, rng: np.random.Generator,
    size: int = 3000, grid_points: int = 100,
) -> dict[str, Any] | None:
    """Up to ``size`` training rows' (loss, mean learned weight, noisy flag) from one Phase II
    epoch, and the weighting function ``g(L)`` at the epoch's end on a loss grid (Fig. 5).

    ``losses`` and ``weights`` ``[N]`` are :meth:`SGDLWrapper.sample_losses` and
    :meth:`SGDLWrapper.sample_weights` of the epoch (NaN: unseen): each row's mean input to
    the weighting net and its mean output, read before ``end_epoch`` clears them. None when
    no row was weighed (Phase I, or Phase II without denoising learning).
    """
    seen = np.flatnonzero(np.isfinite(weights))
    if seen.size == 0:
        return None
    rows = np.sort(rng.choice(seen, size=min(size, seen.size), replace=False))
    noisy = wrapper.train_data.noisy
    grid = np.linspace(0.0, float(np.quantile(losses[seen], 0.99)), grid_points)
    parameter = next(wrapper.weight_net.parameters())
    with torch.no_grad():
        curve = wrapper.weight_net(torch.as_tensor(grid, dtype=parameter.dtype,
                                                   device=parameter.device))
    return {
        "epoch": wrapper.epoch - 1,
        "loss": losses[rows].round(5).tolist(),
        "weight": weights[rows].round(5).tolist(),
        "noisy": None if noisy is None else noisy[rows].tolist(),
        "function": {"loss": grid.round(5).tolist(), "weight": curve.cpu().numpy().tolist()},
    }
