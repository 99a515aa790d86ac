"""A public checker for a model's gradient factors, against the exact loop: those of its
``per_sample_factors`` hook, or those recorded from its modules
(:mod:`sgdl_wrap.phase2.recorded`, ``source="modules"``).

Adapter authors call :func:`check_gradient_factors` in their tests (as this project's own
adapter tests do); :func:`gradient_factor_agreement` returns both sets of cosines for
measuring an approximate hook (``benchmarks/per_sample_agreement.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import Tensor, nn

from sgdl_wrap.losses import check_per_sample
from sgdl_wrap.phase2.features import (
    LinearFactor,
    SupportsGradientFactors,
    factor_cosines,
    hook_forward,
    loop_cosines,
)
from sgdl_wrap.phase2.functional import call_at, trainable_parameters
from sgdl_wrap.phase2.recorded import check_module_coverage, module_factors
from sgdl_wrap.protocols import PerSampleLoss

__all__ = [
    "FactorAgreement",
    "FactorSource",
    "check_gradient_factors",
    "gradient_factor_agreement",
    "recorded_factors_refusal",
]

# Where the factors come from: the model's per_sample_factors hook, or its modules.
FactorSource = Literal["hook", "modules"]


@dataclass(frozen=True)
class FactorAgreement:
    """Cosines ``[B, P]`` from the factors and from the loop, columns named by ``names``.

    Attributes:
        names: the factor (parameter) names, sorted; one column each.
        factor: cosines from :func:`~sgdl_wrap.phase2.features.factor_cosines`.
        loop: cosines from :func:`~sgdl_wrap.phase2.features.loop_cosines` w.r.t. the
            parameters.
        exact: per name, whether the hook claims its factor is exact.
        uncovered: trainable parameters that have no factor (and so no cosine column).
    """

    names: list[str]
    factor: Tensor
    loop: Tensor
    exact: dict[str, bool]
    uncovered: list[str]

    def max_error(self, name: str) -> float:
        """Largest absolute cosine difference in column ``name``."""
        column = self.names.index(name)
        return float((self.factor[:, column] - self.loop[:, column]).abs().max())


def _noise(like: Tensor, generator: torch.Generator) -> Tensor:
    # Drawn on the CPU generator so that the point is the same on any device.
    return torch.randn(like.shape, generator=generator, dtype=like.dtype).to(like.device)


def gradient_factor_agreement(
    model: nn.Module,
    loss: PerSampleLoss,
    users: Tensor,
    candidates: Tensor,
    *,
    step: float = 0.05,
    seed: int = 0,
    point: Mapping[str, Tensor] | None = None,
    source: FactorSource = "hook",
) -> FactorAgreement:
    """Per-sample gradient cosines between the model's parameters and a second point.

    Args:
        model: has ``score`` and, for ``source="hook"``, ``per_sample_factors``; evaluated
            in eval mode (restored afterwards) so that dropout cannot make the two
            computations differ.
        loss: per-sample loss on ``[B, 1 + k]`` scores.
        users: ``[B]`` user ids.
        candidates: ``[B, 1 + k]`` positive then negative item ids.
        step: standard deviation of the Gaussian perturbation giving the second point.
        seed: seeds the perturbation.
        point: the second point by parameter name, instead of a random one (e.g. a
            look-ahead step); its tensors must require gradients.
        source: ``"hook"`` (the model's ``per_sample_factors``) or ``"modules"`` (recorded
            from its embedding and linear modules).
    """
    if source == "modules":
        check_module_coverage(model)
    elif not isinstance(model, SupportsGradientFactors):
        raise TypeError(f"{type(model).__name__} has no per_sample_factors(users, items) hook")

    params = trainable_parameters(model)
    generator = torch.Generator().manual_seed(seed)
    params_hat = dict(point) if point is not None else {
        name: (p.detach() + step * _noise(p, generator)).requires_grad_()
        for name, p in params.items()
    }
    size = users.shape[0]
    was_training = model.training
    model.eval()
    try:
        factored = (partial(module_factors, model) if source == "modules"
                    else hook_forward(model))
        scores, factors = factored(users, candidates, params)
        scores_hat, factors_hat = factored(users, candidates, params_hat)
        names = sorted(factors)
        unknown = [n for n in names if n not in params]
        if unknown:
            raise ValueError(f"factor names {unknown} are not trainable parameter names")
        factor = factor_cosines(
            check_per_sample(loss(scores), size), factors,
            check_per_sample(loss(scores_hat), size), factors_hat,
        )

        def losses_at(point: Mapping[str, Tensor]) -> Tensor:
            return check_per_sample(loss(call_at(model, "score", point, users, candidates)), size)

        loop = loop_cosines(losses_at, params, params_hat, names)
    finally:
        model.train(was_training)
    exact = {n: isinstance(f, LinearFactor) or f.exact for n, f in factors.items()}
    uncovered = sorted(set(params) - set(names))
    return FactorAgreement(names, factor, loop, exact, uncovered)


def check_gradient_factors(
    model: nn.Module,
    loss: PerSampleLoss,
    users: Tensor,
    candidates: Tensor,
    *,
    atol: float = 1e-4,
    seed: int = 0,
    source: FactorSource = "hook",
) -> FactorAgreement:
    """Assert that every factor marked exact gives the loop's cosines within ``atol``
    (``source``: see :func:`gradient_factor_agreement`).

    Raises:
        AssertionError: naming the first parameter whose cosines disagree, and by how much.
    """
    agreement = gradient_factor_agreement(model, loss, users, candidates, seed=seed,
                                          source=source)
    for name in agreement.names:
        if agreement.exact[name]:
            error = agreement.max_error(name)
            if not error <= atol:
                raise AssertionError(
                    f"{source} factors of {type(model).__name__}: cosines of {name!r} differ "
                    f"from the exact loop by {error:.3g} (> {atol})"
                )
    return agreement


def recorded_factors_refusal(
    model: nn.Module, loss: PerSampleLoss, users: Tensor, candidates: Tensor
) -> str | None:
    """Why factors recorded from ``model``'s modules cannot replace the loop, or None when
    they give the loop's cosines on the probe samples ``users`` ``[B]``, ``candidates``
    ``[B, 1 + k]`` (within 1e-3, which float32 rounding stays far below and a factor that
    misses another sample's influence does not)."""
    try:
        check_gradient_factors(model, loss, users, candidates, atol=1e-3, source="modules")
    except (TypeError, ValueError, RuntimeError, AssertionError) as refusal:
        return str(refusal)
    return None
