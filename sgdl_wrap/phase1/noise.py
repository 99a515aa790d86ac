"""Noise-rate estimation from the loss distribution (SGDL eq. 4).

Per-sample losses are min-max normalised per user, a two-component Gaussian mixture is fitted
with EM, and the noise rate is the mean posterior of the component with the larger mean
(noisy interactions have larger losses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.mixture import GaussianMixture

__all__ = ["NoiseEstimate", "estimate_noise_rate", "normalize_per_user"]

FloatArray = npt.NDArray[np.float64]


def normalize_per_user(
    losses: npt.ArrayLike, users: npt.ArrayLike, n_users: int
) -> FloatArray:
    """Min-max normalise ``losses`` ``[N]`` within each user's rows to ``[0, 1]``.

    A user whose losses are all equal gets 0 for each of them.
    """
    values = np.asarray(losses, dtype=np.float64)
    owner = np.asarray(users, dtype=np.int64)
    if values.shape != owner.shape or values.ndim != 1:
        raise ValueError(
            f"losses and users must be equal-length vectors, got {values.shape} and {owner.shape}"
        )
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise FloatingPointError(f"non-finite loss {values[bad]} at training row {bad}")
    low = np.full(n_users, np.inf)
    high = np.full(n_users, -np.inf)
    np.minimum.at(low, owner, values)
    np.maximum.at(high, owner, values)
    span = high[owner] - low[owner]
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, (values - low[owner]) / safe, 0.0)


@dataclass(frozen=True)
class NoiseEstimate:
    """Result of :func:`estimate_noise_rate`.

    Attributes:
        rate: estimated noise rate ``sigma`` in ``[0, 1]``.
        posterior: ``[N]`` probability that each row belongs to the large-loss component.
        means: ``(clean, noisy)`` component means; ``stds`` and ``weights`` likewise.
    """

    rate: float
    posterior: FloatArray
    means: tuple[float, float]
    stds: tuple[float, float]
    weights: tuple[float, float]


def estimate_noise_rate(
    normalized_losses: npt.ArrayLike,
    *,
    max_iter: int = 100,
    tol: float = 1e-2,
    reg_covar: float = 5e-4,
    seed: int = 0,
) -> NoiseEstimate:
    """Fit a two-component 1-D Gaussian mixture and read off the noise rate.

    Defaults are the authors' settings (``max_iter=100, tol=1e-2, reg_covar=5e-4``).
    """
    values = np.asarray(normalized_losses, dtype=np.float64).reshape(-1, 1)
    if values.shape[0] < 2:
        raise ValueError(f"need at least 2 losses to fit a mixture, got {values.shape[0]}")
    mixture = GaussianMixture(
        n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar, random_state=seed
    )
    mixture.fit(values)
    means = mixture.means_.ravel()
    noisy, clean = int(np.argmax(means)), int(np.argmin(means))
    if noisy == clean:
        noisy = 1 - clean
    posterior = mixture.predict_proba(values)[:, noisy]
    stds = np.sqrt(mixture.covariances_.ravel())
    weights = mixture.weights_.ravel()
    return NoiseEstimate(
        rate=float(posterior.mean()),
        posterior=posterior,
        means=(float(means[clean]), float(means[noisy])),
        stds=(float(stds[clean]), float(stds[noisy])),
        weights=(float(weights[clean]), float(weights[noisy])),
    )
