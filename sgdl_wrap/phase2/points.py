r"""Look-ahead points (SGDL eq. 7): where one SGD step on the weighted training loss would take
the model, and the memorized batch's losses there (eq. 8).

A wrapper picks one representation of the point, once:

* :class:`ParameterPoints`: the model's trainable parameters by name, stepped functionally
  (:func:`~sgdl_wrap.phase2.functional.lookahead`); any model.
* :class:`RowPoints`: for a linear propagation model that offers its Gram (LightGCN), the
  memorized batch's final rows moved through it. For final representations linear in the
  trainable tables, ``Z = P E`` (``E`` ``[N, d]``: the user table stacked on the item table),
  with scores that are dot products of final rows, one SGD step ``E' = E - lr * grad_E L``
  moves the final rows to

      ``Z' = Z - lr * P P^T grad_Z L``,

  and ``grad_Z L`` is non-zero only on the rows the loss gathered. Given ``K = P P^T``, the
  rows a memorized batch needs at the point are ``Z_T - lr * K[T, S] G_S``: no propagation at
  the point, and none in the meta-gradient's backward, which otherwise costs a graph model
  four times its forward. The result is exact (``tests/test_gram_lookahead.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from sgdl_wrap.data.batching import Batch
from sgdl_wrap.losses import check_per_sample
from sgdl_wrap.phase2.features import AtTheta, Factor, Measure, RowFactor
from sgdl_wrap.phase2.functional import call_at, lookahead, trainable_parameters
from sgdl_wrap.protocols import PerSampleLoss

__all__ = [
    "AtPoint",
    "GramBlock",
    "LookAheadPoints",
    "ParameterPoints",
    "RowPoints",
    "ShiftedRows",
    "SupportsPropagationGram",
    "shifted_rows",
]

# Scores and gradient factors of a batch at given parameters (a factored forward).
FactorsAt = Callable[[Mapping[str, Tensor], Batch], tuple[Tensor, dict[str, Factor]]]


@dataclass(frozen=True)
class ShiftedRows:
    """The final rows of a memorized batch at a point reached through a propagation Gram:
    user rows ``[M, d]`` and item rows ``[M, 1 + k, d]``."""

    users: Tensor
    items: Tensor


@dataclass(frozen=True)
class AtPoint:
    """A memorized batch at a look-ahead point: the point (parameters by name, or the batch's
    shifted final rows) and, as measured, the batch's per-sample losses ``[M]`` there and
    their gradient factors."""

    point: Mapping[str, Tensor] | ShiftedRows
    losses: Tensor | None = None
    factors: dict[str, Factor] | None = None


@runtime_checkable
class LookAheadPoints(Protocol):
    """How a wrapper represents look-ahead points."""

    def look_ahead(
        self, at_theta: AtTheta, losses: Tensor, weights: Tensor | None, objective: Tensor,
        lr: float, memorized: Batch, *, source: slice, create_graph: bool, measure: Measure,
        where: str,
    ) -> AtPoint:
        """One SGD step of size ``lr`` on ``objective``, the mean of ``weights`` times
        ``losses`` (``weights`` None: 1), the losses of the ``source`` samples of
        ``at_theta``; and what ``measure`` asks of ``memorized`` there. ``create_graph``
        keeps the point differentiable in the weights."""
        ...


class ParameterPoints:
    """Look-ahead points as the model's trainable parameters by name (any model).

    Args:
        model: the wrapped model.
        loss: its per-sample loss.
        factored: scores and gradient factors of a batch at given parameters, for
            ``measure="factors"`` (None: never asked for).
    """

    def __init__(self, model: nn.Module, loss: PerSampleLoss,
                 factored: FactorsAt | None) -> None:
        self.model, self.loss_fn, self.factored = model, loss, factored

    def look_ahead(
        self, at_theta: AtTheta, losses: Tensor, weights: Tensor | None, objective: Tensor,
        lr: float, memorized: Batch, *, source: slice, create_graph: bool, measure: Measure,
        where: str,
    ) -> AtPoint:
        point = lookahead(objective, trainable_parameters(self.model), lr,
                          create_graph=create_graph)
        if measure == "point":
            return AtPoint(point)
        factors = None
        if measure == "factors":
            assert self.factored is not None
            scores, factors = self.factored(point, memorized)
        else:
            scores = call_at(self.model, "score", point, memorized.users, memorized.candidates)
        return AtPoint(point, check_per_sample(self.loss_fn(scores), len(memorized), where=where),
                       factors)


@runtime_checkable
class SupportsPropagationGram(Protocol):
    """Optional for a model whose trainable parameters are exactly ``user_embedding``
    ``[n_users, d]`` and ``item_embedding`` ``[n_items, d]``, whose final representations are
    ``Z = P [user_embedding; item_embedding]`` (node ``u`` is user ``u``, node
    ``n_users + i`` item ``i``), whose score is ``<Z_u, Z_(n_users + i)>``, and whose
    ``per_sample_factors`` returns the gathered final rows as the ``RowFactor`` of each table
    (``[B, d]`` user rows, ``[B, C, d]`` item rows)."""

    n_users: int
    n_items: int

    def propagation_gram(self) -> Tensor | None:
        """``K = P P^T`` ``[N, N]`` in the parameters' dtype and device, or None where the
        model will not hold it (too many nodes); the wrapper then steps functionally."""
        ...


class RowPoints:
    """Look-ahead points as the memorized batch's final rows, moved through the model's
    propagation Gram (see the module docstring). ``at_theta`` must come from a joint
    factored forward of the training batch and the memorized batch.

    Args:
        gram: ``K = P P^T`` ``[N, N]``.
        n_users: the model's number of users.
        loss: its per-sample loss.
        steps_from_memorized: whether look-aheads also step from the memorized batch (the
            scheduler's features at a look-ahead of their own): the block of the Gram then
            holds the memorized samples' columns too.
    """

    def __init__(self, gram: Tensor, n_users: int, loss: PerSampleLoss, *,
                 steps_from_memorized: bool) -> None:
        self.gram, self.n_users, self.loss_fn = gram, n_users, loss
        self.steps_from_memorized = steps_from_memorized
        self._block: tuple[AtTheta, GramBlock] | None = None

    def look_ahead(
        self, at_theta: AtTheta, losses: Tensor, weights: Tensor | None, objective: Tensor,
        lr: float, memorized: Batch, *, source: slice, create_graph: bool, measure: Measure,
        where: str,
    ) -> AtPoint:
        assert at_theta.factors is not None and at_theta.gradients is not None
        users, items = at_theta.factors["user_embedding"], at_theta.factors["item_embedding"]
        assert isinstance(users, RowFactor) and isinstance(items, RowFactor)
        if losses.dim() == 1:
            # Sample b's rows feed only its own loss, so these are its loss gradients scaled
            # by w_b / n: linear in the weights, so the meta-gradient needs no second-order
            # backward through the loss and the scores.
            scale = (torch.full_like(losses, 1.0 / len(losses)) if weights is None
                     else weights / len(losses))
            grad_users = scale[:, None] * at_theta.gradients["user_embedding"][source]
            grad_items = scale[:, None, None] * at_theta.gradients["item_embedding"][source]
        else:
            grad_users, grad_items = torch.autograd.grad(
                objective, [users.rows, items.rows],
                create_graph=create_graph, retain_graph=True, materialize_grads=True,
            )
            grad_users, grad_items = grad_users[source], grad_items[source]
        user_rows, item_rows = shifted_rows(self._gram_block(at_theta), users.rows, items.rows,
                                            grad_users, grad_items, lr, source=source)
        point = ShiftedRows(user_rows, item_rows)
        if measure == "point":
            return AtPoint(point)
        # The Gram's contract: a score is the dot product of the final rows.
        scores = (user_rows.unsqueeze(1) * item_rows).sum(dim=-1)
        assert items.ids is not None
        factors: dict[str, Factor] = {
            "user_embedding": RowFactor(user_rows, exact=users.exact),
            "item_embedding": RowFactor(item_rows, items.ids[at_theta.memorized], items.exact),
        }
        losses_there = check_per_sample(self.loss_fn(scores), len(memorized), where=where)
        return AtPoint(point, losses_there, factors)

    def _gram_block(self, at_theta: AtTheta) -> GramBlock:
        """The block of the Gram that the look-aheads from ``at_theta`` read, gathered once
        per step."""
        if self._block is None or self._block[0] is not at_theta:
            items = at_theta.factors["item_embedding"] if at_theta.factors else None
            assert isinstance(items, RowFactor) and items.ids is not None
            block = GramBlock(
                self.gram, self.n_users, at_theta.users, items.ids, target=at_theta.memorized,
                sources=slice(None) if self.steps_from_memorized else at_theta.training,
            )
            self._block = (at_theta, block)
        return self._block[1]

    def __getstate__(self) -> dict[str, object]:
        # A step's block refers to that step's graph; it is never needed again.
        return {**self.__dict__, "_block": None}


def _nodes(n_users: int, users: Tensor, items: Tensor) -> Tensor:
    """Node ids of the gathered rows: ``users`` ``[B]`` then ``items`` ``[B, C]`` flattened."""
    return torch.cat([users, items.reshape(-1) + n_users])


def _contiguous(part: slice, samples: int, name: str) -> tuple[int, int]:
    start, stop, step = part.indices(samples)
    if step != 1:
        raise ValueError(f"{name} must be a contiguous slice, got step {step}")
    return start, max(start, stop)


class GramBlock:
    """``K[T, J]``: the Gram's rows of the ``target`` samples' nodes ``T`` and its columns of
    the nodes ``J`` of the ``sources`` samples, gathered once; every look-ahead that moves
    the target rows (SGDL takes one or two per batch, from the training samples and from the
    memorized ones) reads its columns from it instead of gathering rows of ``K`` again.

    Args:
        gram: ``K = P P^T`` ``[N, N]``.
        n_users: number of user nodes (item ``i`` is node ``n_users + i``).
        users, items: ``[B]``, ``[B, C]`` ids of the batch's gathered rows.
        target: the samples whose rows the look-aheads move.
        sources: the samples whose columns the look-aheads read (a contiguous slice); the
            fewer, the less of ``K`` is copied.
    """

    def __init__(
        self, gram: Tensor, n_users: int, users: Tensor, items: Tensor, target: slice,
        sources: slice = slice(None),
    ) -> None:
        self.samples, self.candidates = items.shape
        self.target = target
        self._first, self._stop = _contiguous(sources, self.samples, "sources")
        target_nodes = _nodes(n_users, users[target], items[target])
        # Whole rows first (contiguous reads of K), then the columns of that small block:
        # several times faster than one 2-D advanced index.
        self.block = gram.index_select(0, target_nodes).index_select(
            1, _nodes(n_users, users[sources], items[sources])
        )

    def columns(self, source: slice) -> Tensor:
        """``K[T, S]`` ``[|T|, |S|]`` for the nodes ``S`` of the ``source`` samples (their
        users, then their items), which must lie within ``sources``."""
        start, stop = _contiguous(source, self.samples, "source")
        if start < self._first or stop > self._stop:
            raise ValueError(
                f"source samples {start}:{stop} lie outside the gathered columns' samples "
                f"{self._first}:{self._stop}"
            )
        start, stop = start - self._first, stop - self._first
        first_item = self._stop - self._first + start * self.candidates
        return torch.cat([
            self.block[:, start:stop],
            self.block[:, first_item:first_item + (stop - start) * self.candidates],
        ], dim=1)


def shifted_rows(
    gram: GramBlock,
    user_rows: Tensor,
    item_rows: Tensor,
    grad_users: Tensor,
    grad_items: Tensor,
    lr: float,
    *,
    source: slice,
) -> tuple[Tensor, Tensor]:
    """The final rows of ``gram.target``'s samples after one SGD step of size ``lr`` on an
    objective that depends on the parameters only through the ``source`` samples' rows.

    Args:
        gram: the Gram's block of the batch whose rows are given.
        user_rows, item_rows: ``[B, d]``, ``[B, C, d]`` the batch's final rows at the
            current point.
        grad_users, grad_items: ``[S, d]``, ``[S, C, d]`` the objective's gradients with
            respect to the ``source`` samples' rows; the result is differentiable through
            them (the meta-gradient).
        lr: step size ``eta_1``.
        source: the samples the objective reads (dimension 0).

    Returns:
        ``[T, d]`` user rows and ``[T, C, d]`` item rows at the look-ahead point.
    """
    dim = user_rows.shape[-1]
    shift = gram.columns(source) @ torch.cat([grad_users, grad_items.reshape(-1, dim)])
    target_users, target_items = user_rows[gram.target], item_rows[gram.target]
    count = target_users.shape[0]
    return (
        target_users - lr * shift[:count],
        target_items - lr * shift[count:].reshape(target_items.shape),
    )
