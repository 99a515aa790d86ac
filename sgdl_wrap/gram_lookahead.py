r"""The look-ahead of a linear propagation model, taken on its final rows through a Gram matrix.

For a model whose final representations are linear in its trainable tables, ``Z = P E``
(``E`` ``[N, d]``: the user table stacked on the item table; LightGCN's ``P`` is the mean of
``A_hat^0 .. A_hat^L``), and whose scores are dot products of final rows, one SGD step
``E' = E - lr * grad_E L`` moves the final rows to

    ``Z' = Z - lr * P P^T grad_Z L``,

and ``grad_Z L`` is non-zero only on the rows the loss gathered. Given ``K = P P^T``, the rows
a memorized batch needs at the look-ahead point are therefore ``Z_T - lr * K[T, S] G_S``:
no propagation at the look-ahead point, and none in the meta-gradient's backward, which
otherwise costs a graph model four times its forward (a propagation to form the step, one
at the look-ahead point, and both again backward). The result is exact, not an
approximation: ``tests/test_gram_lookahead.py`` checks it against the functional step.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["GramBlock", "SupportsPropagationGram", "dot_scores", "shifted_rows"]


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


def dot_scores(user_vectors: Tensor, item_vectors: Tensor) -> Tensor:
    """Dot products of each user with its item(s).

    Args:
        user_vectors: ``[B, d]``.
        item_vectors: ``[B, d]`` or ``[B, C, d]``.

    Returns:
        ``[B]`` or ``[B, C]``.
    """
    if item_vectors.dim() == 3:
        user_vectors = user_vectors.unsqueeze(1)
    # A broadcast product, not a batched matmul: for a few candidates per user it is about
    # twice as fast, forward, backward and double backward (SGDL's look-ahead).
    return (user_vectors * item_vectors).sum(dim=-1)


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
