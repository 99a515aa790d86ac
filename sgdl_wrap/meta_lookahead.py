"""Phase II's look-ahead for a training batch and its memorized batch: the point one SGD
step on the weighted training loss would reach (SGDL eq. 7), and the memorized batch's
losses and gradient factors there.

The point is either the model's parameters by name (the functional step of
:mod:`sgdl_wrap.lookahead`, any model) or, for a linear propagation model that offers its
Gram, the memorized batch's final rows there (:mod:`sgdl_wrap.gram_lookahead`: no
propagation at the look-ahead point nor in the meta-gradient's backward).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor, nn

from sgdl_wrap.batching import Batch
from sgdl_wrap.gram_lookahead import (
    GramBlock,
    SupportsPropagationGram,
    dot_scores,
    shifted_rows,
)
from sgdl_wrap.lookahead import call_at, lookahead
from sgdl_wrap.losses import check_per_sample
from sgdl_wrap.module_factors import factored_forward
from sgdl_wrap.per_sample import Factor, RowFactor, loss_gradients
from sgdl_wrap.protocols import PerSampleLoss

__all__ = ["JointForward", "LookAhead", "Point", "ShiftedRows", "weighted_mean"]


@dataclass(frozen=True)
class JointForward:
    """Scores ``[B + M, 1 + k]``, losses ``[B + M]``, gradient factors and users ``[B + M]``
    of a training batch and its memorized batch scored together at ``theta``; ``memorized``
    selects the memorized part."""

    scores: Tensor
    losses: Tensor
    factors: dict[str, Factor]
    users: Tensor
    memorized: slice

    @cached_property
    def loss_gradients(self) -> dict[str, Tensor]:
        """Each sample's loss gradient with respect to its factors (one backward, shared by
        the look-aheads through a Gram and the scheduler's cosines)."""
        return loss_gradients(self.losses, self.factors)

    @property
    def rows(self) -> tuple[RowFactor, RowFactor]:
        """The user and item row factors (a model with a propagation Gram has these)."""
        users, items = self.factors["user_embedding"], self.factors["item_embedding"]
        assert isinstance(users, RowFactor) and isinstance(items, RowFactor)
        return users, items


@dataclass(frozen=True)
class ShiftedRows:
    """The memorized batch at a look-ahead point reached through a propagation Gram:
    scores ``[M, 1 + k]`` and the factors of its final rows."""

    scores: Tensor
    factors: dict[str, Factor]


# A look-ahead point: parameters by name, or the memorized batch's rows there.
Point = Mapping[str, Tensor] | ShiftedRows


def weighted_mean(weights: Tensor | None, losses: Tensor) -> Tensor:
    """Mean over rows of ``sum(weights * losses)`` within a row (unweighted for ``weights``
    None); ``[B]`` or ``[B, 1 + k]``."""
    weighted = losses if weights is None else weights * losses
    return weighted.reshape(losses.shape[0], -1).sum(dim=1).mean()


class LookAhead:
    """Forwards, look-ahead steps and evaluations at look-ahead points for ``model`` and
    its per-sample ``loss``; gradient factors come from the model's ``per_sample_factors``
    hook or, with ``recorded_factors``, from its modules (:mod:`sgdl_wrap.module_factors`)."""

    def __init__(
        self, model: nn.Module, loss: PerSampleLoss, *, recorded_factors: bool = False
    ) -> None:
        self.model = model
        self.loss_fn = loss
        self.recorded_factors = recorded_factors

    def joint_forward(self, batch: Batch, memorized: Batch, where: str) -> JointForward:
        """One factored forward at ``theta`` for the training batch followed by the memorized
        batch (it would otherwise cost two, a whole propagation each for graph models)."""
        users = torch.cat([batch.users, memorized.users])
        scores, factors = factored_forward(
            self.model, users, torch.cat([batch.candidates, memorized.candidates]), None,
            recorded=self.recorded_factors,
        )
        total = len(batch) + len(memorized)
        losses = check_per_sample(
            self.loss_fn(scores), total, where=f"{where} with its memorized batch"
        )
        return JointForward(scores, losses, factors, users, slice(len(batch), total))

    def gram_block(
        self, gram: Tensor, joint: JointForward, *, steps_from_memorized: bool
    ) -> GramBlock:
        """The block of the propagation Gram ``gram`` ``[N, N]`` that the look-aheads of
        ``joint`` read: its memorized rows' rows, and the columns of the training batch's
        rows (and of the memorized batch's when ``steps_from_memorized``: the scheduler's
        features then take a look-ahead of their own from it)."""
        assert isinstance(self.model, SupportsPropagationGram)
        items = joint.rows[1].ids
        assert items is not None
        training = slice(0, joint.memorized.start)
        return GramBlock(
            gram, self.model.n_users, joint.users, items, target=joint.memorized,
            sources=slice(None) if steps_from_memorized else training,
        )

    def step_to(
        self,
        losses: Tensor,
        weights: Tensor | None,
        lr: float,
        *,
        params: dict[str, Tensor],
        gram: GramBlock | None,
        joint: JointForward | None,
        source: slice,
        create_graph: bool = True,
    ) -> Point:
        """The look-ahead point of one SGD step on :func:`weighted_mean` of ``weights`` and
        ``losses`` (the losses of the ``source`` samples of ``joint``): parameters, or with a
        Gram the memorized batch's shifted rows."""
        if gram is None:
            return lookahead(weighted_mean(weights, losses), params, lr,
                             create_graph=create_graph)
        assert joint is not None
        users, items = joint.rows
        grad_users, grad_items = self._row_gradients(joint, losses, weights, source,
                                                     create_graph)
        user_rows, item_rows = shifted_rows(
            gram, users.rows, items.rows, grad_users, grad_items, lr, source=source
        )
        assert items.ids is not None
        return ShiftedRows(
            dot_scores(user_rows, item_rows),
            {
                "user_embedding": RowFactor(user_rows, exact=users.exact),
                "item_embedding": RowFactor(item_rows, items.ids[joint.memorized], items.exact),
            },
        )

    def losses_at(self, point: Point, batch: Batch, where: str) -> Tensor:
        """``[B]`` per-sample losses of ``batch`` at ``point``."""
        scores = (
            point.scores if isinstance(point, ShiftedRows)
            else call_at(self.model, "score", point, batch.users, batch.candidates)
        )
        return check_per_sample(self.loss_fn(scores), len(batch), where=where)

    def factors_at(self, point: Point, batch: Batch) -> tuple[Tensor, dict[str, Factor]]:
        """Scores and gradient factors of ``batch`` at ``point``."""
        if isinstance(point, ShiftedRows):
            return point.scores, point.factors
        return factored_forward(self.model, batch.users, batch.candidates, point,
                                recorded=self.recorded_factors)

    @staticmethod
    def _row_gradients(
        joint: JointForward,
        losses: Tensor,
        weights: Tensor | None,
        source: slice,
        create_graph: bool,
    ) -> tuple[Tensor, Tensor]:
        """Gradients ``[S, d]``, ``[S, C, d]`` of :func:`weighted_mean` of ``weights`` and
        ``losses`` with respect to the ``source`` samples' final rows."""
        if losses.dim() == 1:
            # Sample b's rows feed only its own loss, so these are its loss gradients scaled
            # by w_b / n: linear in the weights, so the meta-gradient needs no second-order
            # backward through the loss and the scores.
            gradients = joint.loss_gradients
            scale = (
                torch.full_like(losses, 1.0 / len(losses)) if weights is None
                else weights / len(losses)
            )
            return (
                scale[:, None] * gradients["user_embedding"][source],
                scale[:, None, None] * gradients["item_embedding"][source],
            )
        users, items = joint.rows
        grad_users, grad_items = torch.autograd.grad(
            weighted_mean(weights, losses), [users.rows, items.rows],
            create_graph=create_graph, retain_graph=True, materialize_grads=True,
        )
        return grad_users[source], grad_items[source]
