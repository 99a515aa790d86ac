r"""Per-sample features of the adaptive scheduler: each memorized sample's loss, and the
cosines of its per-sample gradients at the look-ahead point and at the current parameters,
without materialising a per-sample copy of any parameter.

For each sample ``m`` and each parameter tensor ``p`` the scheduler needs
``cos(grad_p L_m(theta_hat), grad_p L_m(theta))``. A wrapper picks one way, once:

* :class:`FactorFeatures`: from *gradient factors*, given by the model's optional
  ``per_sample_factors(users, items) -> (scores, {param_name: factor})`` hook
  (:class:`SupportsGradientFactors`) or recorded from its modules
  (:mod:`sgdl_wrap.phase2.recorded`). Two factor kinds cover embedding models exactly:

  - :class:`RowFactor`: the parameter is a table read by gathering rows ``E[ids]``. The
    per-sample gradient is ``sum_c onehot(ids_c) (x) G_c`` with ``G = dL/d rows``, so
    ``<g_m, g'_m> = sum_{c,c'} [ids_c = ids'_c'] <G_c, G'_c'>``.
  - :class:`LinearFactor`: ``y = x W^T (+ b)`` applied per sample (Opacus-style ghost
    factors): ``<g_m, g'_m> = sum_{c,c'} <delta_c, delta'_c'> <x_c, x'_c'>`` with
    ``delta = dL/dy``; a bias has ``x = 1``.

  Graph models cannot factor their tables this way (propagation mixes every row into every
  sample); their hook returns :class:`RowFactor` over the *propagated* rows with
  ``exact=False``: the cosines are then those of the gradients w.r.t. the final
  representations, an approximation whose agreement with the loop is measured in
  ``benchmarks/``.
* :class:`PlainFeatures`: a plain forward, and the exact oracle: one backward per sample
  and point (:func:`loop_cosines`). Slow; without a scheduler, the features are never
  asked for and the forward is all it does.

Only autograd (``torch.autograd.grad``) is used, so this works with ``torch.sparse`` ops
where ``torch.func`` transforms fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, cast, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sgdl_wrap.data.batching import Batch
from sgdl_wrap.losses import check_per_sample
from sgdl_wrap.phase2.functional import call_at, trainable_parameters
from sgdl_wrap.protocols import PerSampleLoss, Recommender

if TYPE_CHECKING:
    from sgdl_wrap.phase2.points import AtPoint

__all__ = [
    "AtTheta",
    "Factor",
    "FactorFeatures",
    "LinearFactor",
    "PlainFeatures",
    "RowFactor",
    "SampleFeatures",
    "SupportsGradientFactors",
    "factor_cosines",
    "loop_cosines",
    "loss_gradients",
]

_EPS = 1e-12
_SMALL_MIXING = 16


@dataclass(frozen=True)
class RowFactor:
    """A parameter table read by gathering rows.

    Attributes:
        rows: ``[B, d]`` or ``[B, C, d]`` gathered rows, part of the scores' graph.
        ids: ``[B]`` or ``[B, C]`` table indices of ``rows``; None when no table row occurs
            twice within a sample and row ``c`` is the same table row at both points (e.g.
            one user per sample), which skips the pairwise id comparison.
        exact: False when ``rows`` are propagated representations, not the table's rows.
    """

    rows: Tensor
    ids: Tensor | None = None
    exact: bool = True


@dataclass(frozen=True)
class LinearFactor:
    """A ``Linear`` weight (``inputs`` given) or bias (``inputs`` None) applied per sample.

    Attributes:
        outputs: ``[B, out]`` or ``[B, C, out]`` the layer's output (pre-activation), in
            the scores' graph.
        inputs: the matching ``[B, in]`` or ``[B, C, in]`` layer inputs, or None for a bias.
            Any coordinates that preserve inner products serve, e.g. a sparse input as its
            non-zero values in a fixed order, zero-padded at the end to any width.
    """

    outputs: Tensor
    inputs: Tensor | None = None


Factor = RowFactor | LinearFactor


@runtime_checkable
class SupportsGradientFactors(Protocol):
    def per_sample_factors(
        self, users: Tensor, items: Tensor
    ) -> tuple[Tensor, dict[str, Factor]]:
        """Scores exactly as ``score(users, items)`` plus one factor per parameter name."""
        ...


def _three_d(t: Tensor) -> Tensor:
    return t.unsqueeze(1) if t.dim() == 2 else t


def _pair_dot(a: Tensor, b: Tensor) -> Tensor:
    """``[B, C, d] x [B, C', d] -> [B, C, C']`` inner products."""
    return torch.bmm(_three_d(a), _three_d(b).transpose(1, 2))


def _factor_dot(first: Factor, first_grad: Tensor, second: Factor, second_grad: Tensor) -> Tensor:
    """``[B]`` inner products of per-sample gradients described by two factors.

    Each form first mixes ``second_grad`` over the candidates that touch the same table row
    (or meet equal inputs) and only then multiplies by ``first_grad``: gradients that cancel
    within a sample (BPR with a repeated item) then cancel exactly, as in the loop.
    """
    first_grad, second_grad = _three_d(first_grad), _three_d(second_grad)
    if isinstance(first, RowFactor):
        assert isinstance(second, RowFactor)
        if first.ids is None or second.ids is None:
            # Aligned rows that never repeat: only row c meets row c.
            return (first_grad * second_grad).flatten(1).sum(dim=1)
        first_ids = first.ids.reshape(first_grad.shape[0], -1)
        second_ids = second.ids.reshape(second_grad.shape[0], -1)
        mixing = (first_ids.unsqueeze(2) == second_ids.unsqueeze(1)).to(second_grad.dtype)
    else:
        assert isinstance(second, LinearFactor)
        if first.inputs is None or second.inputs is None:
            # A bias's per-sample gradient is the sum of its output gradients.
            return (first_grad.sum(dim=1) * second_grad.sum(dim=1)).sum(dim=1)
        first_inputs, second_inputs = first.inputs, second.inputs
        width = max(first_inputs.shape[-1], second_inputs.shape[-1])
        # Coordinates past an input's width are zeros (e.g. padding to a batch's largest
        # sparse input, which differs between a joint and a separate forward).
        first_inputs = F.pad(first_inputs, (0, width - first_inputs.shape[-1]))
        second_inputs = F.pad(second_inputs, (0, width - second_inputs.shape[-1]))
        mixing = _pair_dot(first_inputs, second_inputs)
    if mixing.shape[1] * mixing.shape[2] <= _SMALL_MIXING:
        # For a few candidates a broadcast product is twice as fast as bmm's tiny matrices.
        mixed = (mixing.unsqueeze(-1) * second_grad.unsqueeze(1)).sum(dim=2)
    else:
        mixed = torch.bmm(mixing, second_grad)
    return (first_grad * mixed).sum(dim=(1, 2))


def _target(factor: Factor) -> Tensor:
    return factor.rows if isinstance(factor, RowFactor) else factor.outputs


def _part(factor: Factor, part: slice) -> Factor:
    """The factor restricted to the samples ``part`` (dimension 0)."""
    if isinstance(factor, RowFactor):
        ids = None if factor.ids is None else factor.ids[part]
        return RowFactor(factor.rows[part], ids, factor.exact)
    inputs = None if factor.inputs is None else factor.inputs[part]
    return LinearFactor(factor.outputs[part], inputs)


def factor_cosines(
    losses_at_theta: Tensor,
    factors_at_theta: Mapping[str, Factor],
    losses_at_hat: Tensor,
    factors_at_hat: Mapping[str, Factor],
    *,
    theta_part: slice = slice(None),
    grads_at_theta: Mapping[str, Tensor] | None = None,
) -> Tensor:
    """``[B, P]`` cosines, one column per factor name (sorted), from two factored forwards.

    Args:
        losses_at_theta: ``[B]`` losses at ``theta``.
        factors_at_theta: their factors; when the forward at ``theta`` also scored other
            samples (a joint forward), ``theta_part`` selects the ``B`` samples of
            ``losses_at_theta`` along dimension 0 of every factor tensor.
        losses_at_hat: ``[B]`` losses of the same samples at ``theta_hat``.
        factors_at_hat: their factors (``B`` samples).
        theta_part: see ``factors_at_theta``.
        grads_at_theta: the gradients of ``losses_at_theta.sum()`` with respect to each
            factor's ``rows`` or ``outputs`` (all samples, before ``theta_part``) where the
            caller has them already (:func:`loss_gradients`); else computed here.

    The losses' graphs are retained (the look-ahead losses feed the meta-gradient later).
    """
    names = sorted(factors_at_theta)
    if sorted(factors_at_hat) != names:
        raise ValueError(
            f"factor names differ between the two points: {names} vs {sorted(factors_at_hat)}"
        )

    if grads_at_theta is None:
        grads_at_theta = loss_gradients(losses_at_theta, factors_at_theta)
    at_theta = [grads_at_theta[n][theta_part] for n in names]
    grads_at_hat = loss_gradients(losses_at_hat, factors_at_hat)
    at_hat = [grads_at_hat[n] for n in names]
    columns = []
    for name, g, h in zip(names, at_theta, at_hat):
        f, f_hat = _part(factors_at_theta[name], theta_part), factors_at_hat[name]
        dot = _factor_dot(f, g, f_hat, h)
        norm = _factor_dot(f, g, f, g) * _factor_dot(f_hat, h, f_hat, h)
        columns.append(dot / norm.clamp_min(0.0).sqrt().clamp_min(_EPS))
    return torch.stack(columns, dim=1).detach()


def loss_gradients(losses: Tensor, factors: Mapping[str, Factor]) -> dict[str, Tensor]:
    """The gradient of ``losses.sum()`` (``[B]``) with respect to each factor's ``rows`` or
    ``outputs``, by name, without a graph (the losses' graph is retained). A factor's
    sample ``b`` feeds only loss ``b``, so entry ``b`` of each gradient is that sample's own
    gradient: one backward gives all of them."""
    names = list(factors)
    targets = [_target(factors[n]) for n in names]
    found = torch.autograd.grad(losses.sum(), targets, retain_graph=True, materialize_grads=True)
    return dict(zip(names, found))


def loop_cosines(
    losses_at: Callable[[Mapping[str, Tensor]], Tensor],
    params: Mapping[str, Tensor],
    params_hat: Mapping[str, Tensor],
    names: Sequence[str] | None = None,
) -> Tensor:
    """Exact ``[B, P]`` cosines by one backward per sample at each point (the oracle).

    Args:
        losses_at: maps a parameter dict to ``[B]`` per-sample losses.
        params: the current parameters ``theta``.
        params_hat: the look-ahead parameters ``theta_hat``.
        names: the parameter names (columns), default all of ``params`` sorted.
    """
    names = sorted(params) if names is None else list(names)

    def per_sample(point: Mapping[str, Tensor]) -> list[list[Tensor]]:
        losses = losses_at(point)
        tensors = [point[n] for n in names]
        result = []
        for b in range(losses.shape[0]):
            grads = torch.autograd.grad(losses[b], tensors, retain_graph=True, allow_unused=True)
            result.append(
                [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, grads)]
            )
        return result

    at_theta, at_hat = per_sample(params), per_sample(params_hat)
    rows = []
    for g_sample, h_sample in zip(at_theta, at_hat):
        rows.append(torch.stack([
            (g * h).sum() / ((g * g).sum() * (h * h).sum()).sqrt().clamp_min(_EPS)
            for g, h in zip(g_sample, h_sample)
        ]))
    return torch.stack(rows).detach()


# What a look-ahead measures of the memorized batch at the point: its losses, its losses and
# gradient factors, or nothing (the point alone, for the exact loop's features).
Measure = Literal["losses", "factors", "point"]

# Scores and gradient factors of users ``[S]`` against items ``[S, C]`` at given parameters
# (None: the model's own): the model's hook, or factors recorded from its modules.
FactoredForward = Callable[[Tensor, Tensor, "Mapping[str, Tensor] | None"],
                           tuple[Tensor, dict[str, Factor]]]


@dataclass(frozen=True)
class AtTheta:
    """A training batch and its memorized batch scored at the current parameters.

    Attributes:
        scores: ``[S, 1 + k]``: the training batch's rows (``training``), then, when they
            were scored with it, the memorized batch's (``memorized``, else empty).
        losses: ``[S]`` per-sample losses.
        users, items: ``[S]`` user ids and ``[S, 1 + k]`` candidates.
        training, memorized: the two batches' slices of dimension 0.
        memorized_losses: ``[M]`` the memorized batch's losses, where the scheduler needs
            them.
        factors: every sample's gradient factors (:class:`FactorFeatures` only).
        gradients: each sample's loss gradient with respect to its factors' rows or
            outputs, by name (:func:`loss_gradients`; with the factors).
    """

    scores: Tensor
    losses: Tensor
    users: Tensor
    items: Tensor
    training: slice
    memorized: slice
    memorized_losses: Tensor | None = None
    factors: dict[str, Factor] | None = None
    gradients: dict[str, Tensor] | None = None


@runtime_checkable
class SampleFeatures(Protocol):
    """How a wrapper scores a step's batches at ``theta`` and computes the scheduler's
    features."""

    # What the features need measured at their look-ahead point.
    feature_measure: Measure

    def at_theta(self, batch: Batch, memorized: Batch, where: str) -> AtTheta:
        """The training batch and, where the scheduler needs them, the memorized batch's
        losses at the current parameters."""
        ...

    def cosines(self, at_theta: AtTheta, memorized: Batch, at_point: AtPoint,
                where: str) -> Tensor:
        """``[M, P]`` gradient cosines of the memorized samples between ``theta`` and the
        look-ahead point ``at_point``."""
        ...


class PlainFeatures:
    """The training batch in one plain forward at ``theta``, and the scheduler's cosines
    (when there is a scheduler) by the exact loop: one backward per memorized sample at
    each point. Needs look-ahead points as parameters.

    Args:
        model: the wrapped model.
        loss: its per-sample loss.
        scheduled: whether a scheduler needs the memorized batch's losses at ``theta``.
    """

    # What the features need measured at their look-ahead point.
    feature_measure: Measure = "point"

    def __init__(self, model: nn.Module, loss: PerSampleLoss, *, scheduled: bool) -> None:
        self.model, self.loss_fn, self.scheduled = model, loss, scheduled

    def at_theta(self, batch: Batch, memorized: Batch, where: str) -> AtTheta:
        model = cast(Recommender, self.model)
        scores = model.score(batch.users, batch.candidates)
        losses = check_per_sample(self.loss_fn(scores), len(batch), where=where)
        memorized_losses = None
        if self.scheduled:
            memorized_scores = model.score(memorized.users, memorized.candidates)
            memorized_losses = check_per_sample(self.loss_fn(memorized_scores), len(memorized),
                                                where=f"the memorized batch of {where}")
        size = len(batch)
        return AtTheta(scores, losses, batch.users, batch.candidates, slice(0, size),
                       slice(size, size), memorized_losses)

    def cosines(self, at_theta: AtTheta, memorized: Batch, at_point: AtPoint,
                where: str) -> Tensor:
        assert isinstance(at_point.point, Mapping)

        def losses_at(point: Mapping[str, Tensor]) -> Tensor:
            scores = call_at(self.model, "score", point, memorized.users, memorized.candidates)
            return check_per_sample(self.loss_fn(scores), len(memorized), where=where)

        return loop_cosines(losses_at, trainable_parameters(self.model), at_point.point)


class FactorFeatures:
    """The scheduler's cosines from gradient factors: the training batch and the memorized
    batch in one factored forward at ``theta``, then the factors at the look-ahead point.

    Args:
        model: the wrapped model.
        loss: its per-sample loss.
        factored: the factored forward (the model's hook, or recorded from its modules).
    """

    feature_measure: Measure = "factors"

    def __init__(self, model: nn.Module, loss: PerSampleLoss, factored: FactoredForward) -> None:
        self.model, self.loss_fn, self.factored = model, loss, factored

    def at_theta(self, batch: Batch, memorized: Batch, where: str) -> AtTheta:
        # One forward for both batches: a graph model would otherwise propagate twice.
        users = torch.cat([batch.users, memorized.users])
        items = torch.cat([batch.candidates, memorized.candidates])
        scores, factors = self.factored(users, items, None)
        total = len(batch) + len(memorized)
        losses = check_per_sample(self.loss_fn(scores), total,
                                  where=f"{where} with its memorized batch")
        memorized_part = slice(len(batch), total)
        return AtTheta(scores, losses, users, items, slice(0, len(batch)), memorized_part,
                       losses[memorized_part], factors, loss_gradients(losses, factors))

    def at(self, point: Mapping[str, Tensor], batch: Batch) -> tuple[Tensor, dict[str, Factor]]:
        """Scores and gradient factors of ``batch`` at ``point`` (a look-ahead's
        parameters)."""
        return self.factored(batch.users, batch.candidates, point)

    def cosines(self, at_theta: AtTheta, memorized: Batch, at_point: AtPoint,
                where: str) -> Tensor:
        assert at_theta.factors is not None and at_point.factors is not None
        assert at_point.losses is not None
        return factor_cosines(
            at_theta.losses, at_theta.factors, at_point.losses, at_point.factors,
            theta_part=at_theta.memorized, grads_at_theta=at_theta.gradients,
        )


def hook_forward(model: nn.Module) -> FactoredForward:
    """The factored forward of a model's ``per_sample_factors`` hook."""

    def factored(users: Tensor, items: Tensor,
                 point: Mapping[str, Tensor] | None) -> tuple[Tensor, dict[str, Factor]]:
        if point is None:
            assert isinstance(model, SupportsGradientFactors)
            return model.per_sample_factors(users, items)
        return call_at(model, "per_sample_factors", point, users, items)  # type: ignore[no-any-return]

    return factored
