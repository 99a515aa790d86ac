"""One Phase II step, in the paper's order (SGDL Sec. 3.2, eq. 5-11).

:class:`SelfGuidedStep` reads top to bottom: score the batch, weigh it, take the look-ahead,
score the memorized batch there, the scheduler's features and selection, the meta update,
the weighted loss. Its varying parts are objects chosen once, by :func:`build_step`:

* the per-sample features (:mod:`.features`): gradient factors from the model's hook or
  recorded from its modules, the exact loop, or none without a scheduler;
* the look-ahead points (:mod:`.points`): parameters by name, or a linear propagation
  model's final rows moved through its Gram;
* the guide: the memorized batch as it is drawn, or as the scheduler selects it.

:class:`FixedWeightsStep` is Phase II with weights that are not learned
(``SGDLConfig.weighting``: the frozen net or uniform weights).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from sgdl_wrap.config import SGDLConfig
from sgdl_wrap.data.batching import Batch
from sgdl_wrap.losses import check_candidate_losses
from sgdl_wrap.phase2.features import (
    AtTheta,
    FactorFeatures,
    Measure,
    PlainFeatures,
    SampleFeatures,
    hook_forward,
)
from sgdl_wrap.phase2.points import AtPoint, LookAheadPoints, ParameterPoints, RowPoints
from sgdl_wrap.phase2.recorded import module_factors
from sgdl_wrap.phase2.scheduler import DenoisingScheduler
from sgdl_wrap.phase2.weighting import WeightNet
from sgdl_wrap.protocols import PerSampleLoss, SupportsCandidateLosses

__all__ = [
    "FixedWeightsStep", "MetaLearner", "SelfGuidedStep", "WeightedLoss", "build_step",
    "weighted_mean",
]


def weighted_mean(weights: Tensor | None, losses: Tensor) -> Tensor:
    """Mean over rows of ``sum(weights * losses)`` within a row (unweighted for ``weights``
    None); ``[B]`` or ``[B, 1 + k]``."""
    weighted = losses if weights is None else weights * losses
    return weighted.reshape(losses.shape[0], -1).sum(dim=1).mean()


@dataclass(frozen=True)
class WeightedLoss:
    """What a Phase II step gives the model: the scalar to ``backward()`` (the batch's loss
    weighted by the updated weights, eq. 9), the per-sample losses the weights apply to
    (``[B]``, or ``[B, 1 + k]`` per candidate) and those weights (detached)."""

    objective: Tensor
    losses: Tensor
    weights: Tensor


class MetaLearner:
    """What Phase II learns besides the model: the weighting net ``g(L; psi)``, the
    scheduler, and their Adam optimizers, re-created by :meth:`reset`.

    Args:
        config: the wrapper's settings.
        seeded: builds a net from a private random stream (``seeded(build, salt)``), so
            that the user's global generator is untouched.
    """

    def __init__(self, config: SGDLConfig, seeded: Callable[[Callable[[], nn.Module], int],
                                                             Any]) -> None:
        self.config, self.seeded = config, seeded
        self.weight_net: WeightNet = seeded(lambda: WeightNet(config.weight_hidden), 0)
        self.weight_optimizer: torch.optim.Optimizer | None = None
        self.scheduler: DenoisingScheduler | None = None
        self.scheduler_optimizer: torch.optim.Optimizer | None = None
        self.scheduler_cosines = 0
        self.generator = torch.Generator().manual_seed(config.seed)

    def reset(self) -> None:
        """A fresh weighting-net optimizer; the scheduler is built again at its next use."""
        self.weight_optimizer = _meta_adam(self.weight_net, self.config.meta_lr)
        self.scheduler = None
        self.scheduler_optimizer = None

    def scheduler_for(self, num_cosines: int, epoch: int) -> DenoisingScheduler:
        """The scheduler, built for ``num_cosines`` features (seeded by ``epoch``) where
        there is none."""
        if self.scheduler is None:
            config = self.config
            self.scheduler_cosines = num_cosines
            self.scheduler = self.seeded(
                lambda: DenoisingScheduler(config.scheduler,  # type: ignore[arg-type]
                                           num_cosines, hidden=config.scheduler_hidden,
                                           tau=config.tau, sampling=config.sampling),
                1 + epoch,
            )
            self.scheduler_optimizer = (_meta_adam(self.scheduler, config.scheduler_lr)
                                        if self.scheduler.trainable else None)
        return self.scheduler

    def update(self, objective: Tensor) -> None:
        """One Adam step of the weighting net (and a learned scheduler) on ``objective``."""
        inputs = list(self.weight_net.parameters())
        if self.scheduler_optimizer is not None:
            assert self.scheduler is not None
            inputs += list(self.scheduler.parameters())
        for parameter in inputs:
            parameter.grad = None
        torch.autograd.backward(objective, inputs=inputs, retain_graph=True)
        assert self.weight_optimizer is not None
        self.weight_optimizer.step()
        if self.scheduler_optimizer is not None:
            self.scheduler_optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "weight_net": self.weight_net.state_dict(),
            "weight_optimizer": _optional_state(self.weight_optimizer),
            "scheduler_cosines": None if self.scheduler is None else self.scheduler_cosines,
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scheduler_optimizer": _optional_state(self.scheduler_optimizer),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any], epoch: int) -> None:
        self.weight_net.load_state_dict(state["weight_net"])
        self.weight_optimizer = self.scheduler = self.scheduler_optimizer = None
        if state["weight_optimizer"] is not None:
            self.reset()
            assert self.weight_optimizer is not None
            self.weight_optimizer.load_state_dict(state["weight_optimizer"])
        if state["scheduler"] is not None:
            scheduler = self.scheduler_for(int(state["scheduler_cosines"]), epoch)
            scheduler.load_state_dict(state["scheduler"])
            if self.scheduler_optimizer is not None:
                self.scheduler_optimizer.load_state_dict(state["scheduler_optimizer"])
        self.generator.set_state(state["generator"])


class UniformGuide:
    """The memorized batch as drawn guides the weights: the meta objective is its mean loss
    at the look-ahead point (``scheduler="none"``, w/o ADS)."""

    # What the look-ahead measures of the memorized batch.
    measure: Measure = "losses"

    def meta_objective(self, at_theta: AtTheta, at_hat: AtPoint, memorized: Batch, lr: float,
                       epoch: int, where: str) -> Tensor:
        assert at_hat.losses is not None
        return at_hat.losses.mean()


class ScheduledGuide:
    """The adaptive scheduler selects which memorized samples guide the weights, from their
    losses and gradient cosines (eq. 10-11).

    Args:
        features: computes the memorized samples' losses at theta and their cosines.
        points: takes the features' own look-ahead on the memorized batch.
        meta: holds the scheduler.
        at_memorized_step: take the cosines at a look-ahead on the memorized batch itself
            (``feature_lookahead="memorized"``), else at the training batch's look-ahead.
    """

    def __init__(self, features: SampleFeatures, points: LookAheadPoints, meta: MetaLearner,
                 *, at_memorized_step: bool) -> None:
        self.features, self.points, self.meta = features, points, meta
        self.feature_measure = features.feature_measure
        self.at_memorized_step = at_memorized_step
        # The meta losses are measured at the training batch's look-ahead; when the features
        # are taken there too, with the factors they need.
        shared = self.feature_measure == "factors" and not at_memorized_step
        self.measure: Measure = "factors" if shared else "losses"
        self.feature_point = self._memorized_step if at_memorized_step else _same_point

    def meta_objective(self, at_theta: AtTheta, at_hat: AtPoint, memorized: Batch, lr: float,
                       epoch: int, where: str) -> Tensor:
        losses = at_theta.memorized_losses
        assert losses is not None
        at_point = self.feature_point(at_theta, at_hat, losses, memorized, lr, where)
        cosines = self.features.cosines(at_theta, memorized, at_point, where)
        scheduler = self.meta.scheduler_for(cosines.shape[1], epoch)
        selection = scheduler.select(losses.detach(), cosines, len(memorized),
                                     self.meta.generator)
        assert at_hat.losses is not None
        objective = (selection.counts * at_hat.losses).sum() / len(memorized)
        if selection.log_prob is not None:
            objective = objective + scheduler.reinforce_loss(selection, objective)
        return objective

    def _memorized_step(self, at_theta: AtTheta, at_hat: AtPoint, losses: Tensor,
                        memorized: Batch, lr: float, where: str) -> AtPoint:
        # The authors' features: a plain SGD step on the memorized batch's own mean loss.
        return self.points.look_ahead(at_theta, losses, None, weighted_mean(None, losses), lr,
                                      memorized, source=at_theta.memorized, create_graph=False,
                                      measure=self.feature_measure, where=where)


def _same_point(at_theta: AtTheta, at_hat: AtPoint, losses: Tensor, memorized: Batch,
                lr: float, where: str) -> AtPoint:
    return at_hat


class SelfGuidedStep:
    """SGDL's Phase II step with a learned weighting net (see the module docstring)."""

    def __init__(self, meta: MetaLearner, features: SampleFeatures, points: LookAheadPoints,
                 guide: UniformGuide | ScheduledGuide,
                 weighed_losses: Callable[[AtTheta, str], Tensor]) -> None:
        self.meta, self.features, self.points, self.guide = meta, features, points, guide
        self.weighed_losses = weighed_losses

    def __call__(self, batch: Batch, memorized: Batch, lr: float, epoch: int,
                 where: str) -> WeightedLoss:
        # Score the batch (and the memorized batch, where the features need it).
        at_theta = self.features.at_theta(batch, memorized, where)
        losses = self.weighed_losses(at_theta, where)
        # Weigh it (eq. 5).
        weights = self.meta.weight_net(losses)
        # Take the look-ahead (eq. 7) and score the memorized batch there (eq. 8).
        at_hat = self.points.look_ahead(at_theta, losses, weights,
                                        weighted_mean(weights, losses), lr, memorized,
                                        source=at_theta.training, create_graph=True,
                                        measure=self.guide.measure,
                                        where=f"the memorized batch of {where}")
        # The scheduler's features and selection (eq. 10-11) give the meta objective.
        objective = self.guide.meta_objective(at_theta, at_hat, memorized, lr, epoch,
                                              f"the memorized batch of {where}")
        # The meta update of the weighting net (and the scheduler).
        self.meta.update(objective)
        # The weighted loss, with the updated weights (eq. 9).
        with torch.no_grad():
            new_weights = self.meta.weight_net(losses)
        return WeightedLoss(weighted_mean(new_weights, losses), losses.detach(), new_weights)


class FixedWeightsStep:
    """Phase II with weights that are not learned: the weighting net frozen at its
    initialisation, or every weight 1 (``uniform``). No meta step is taken."""

    def __init__(self, model: nn.Module, loss: PerSampleLoss, weight_net: WeightNet | None,
                 weighed_losses: Callable[[AtTheta, str], Tensor]) -> None:
        self.weighed_losses = weighed_losses
        self.features = PlainFeatures(model, loss, scheduled=False)
        self.weight_net = weight_net

    def __call__(self, batch: Batch, memorized: Batch, lr: float, epoch: int,
                 where: str) -> WeightedLoss:
        losses = self.weighed_losses(self.features.at_theta(batch, memorized, where), where)
        if self.weight_net is None:
            weights = torch.ones_like(losses)
        else:
            with torch.no_grad():
                weights = self.weight_net(losses)
        return WeightedLoss(weighted_mean(weights, losses), losses.detach(), weights)


PhaseTwoStep = SelfGuidedStep | FixedWeightsStep


def build_step(
    model: nn.Module, loss: PerSampleLoss, config: SGDLConfig, meta: MetaLearner, *,
    factors: str | None, gram: Tensor | None,
) -> PhaseTwoStep:
    """The Phase II step for ``config``, its strategies chosen once.

    Args:
        model, loss: the wrapped model and its loss.
        config: the wrapper's settings.
        meta: the weighting net and the scheduler.
        factors: where gradient factors come from: ``"hook"``, ``"modules"`` or None (the
            exact loop).
        gram: the model's propagation Gram when look-aheads move its final rows.
    """
    weighed_losses = _weighed_losses(loss, config)
    if config.weighting != "learned":
        net = meta.weight_net if config.weighting == "frozen" else None
        return FixedWeightsStep(model, loss, net, weighed_losses)
    scheduled = config.scheduler != "none"
    features: FactorFeatures | PlainFeatures
    if factors is not None and (gram is not None or scheduled):
        factored = hook_forward(model) if factors == "hook" else partial(module_factors, model)
        features = FactorFeatures(model, loss, factored)
    else:
        features = PlainFeatures(model, loss, scheduled=scheduled)
    at_memorized_step = config.feature_lookahead == "memorized"
    points: LookAheadPoints
    if gram is not None:
        points = RowPoints(gram, model.n_users, loss,  # type: ignore[arg-type]
                           steps_from_memorized=scheduled and at_memorized_step)
    else:
        points = ParameterPoints(
            model, loss, features.at if isinstance(features, FactorFeatures) else None)
    guide = (ScheduledGuide(features, points, meta, at_memorized_step=at_memorized_step)
             if scheduled else UniformGuide())
    return SelfGuidedStep(meta, features, points, guide, weighed_losses)


def _weighed_losses(loss: PerSampleLoss, config: SGDLConfig) -> Callable[[AtTheta, str], Tensor]:
    """What the weights apply to: each training sample's loss ``[B]``, or with
    ``weight_candidates`` and a loss that has them, each candidate's ``[B, 1 + k]``."""
    if config.weight_candidates and isinstance(loss, SupportsCandidateLosses):
        candidate_losses = loss.candidate_losses

        def per_candidate(at_theta: AtTheta, where: str) -> Tensor:
            scores = at_theta.scores[at_theta.training]
            return check_candidate_losses(candidate_losses(scores), scores, where=where)

        return per_candidate
    return _per_sample


def _per_sample(at_theta: AtTheta, where: str) -> Tensor:
    return at_theta.losses[at_theta.training]


def _meta_adam(net: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam for a small meta net, stepped once per batch: fused (one kernel for all of the
    net's tensors; a third of foreach's time on the CPU for the LSTM scheduler) where this
    torch and device have it, else foreach."""
    params = list(net.parameters())
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=lr, foreach=True)


def _optional_state(optimizer: torch.optim.Optimizer | None) -> dict[str, Any] | None:
    return None if optimizer is None else optimizer.state_dict()
