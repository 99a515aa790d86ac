"""Input checks and dot-product scoring shared by the reference models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sgdl_wrap.phase2.features import RowFactor

__all__ = ["FinalRepresentationModel", "Propagation", "check_ids", "dot_scores"]


def dot_scores(user_vectors: Tensor, item_vectors: Tensor) -> Tensor:
    """Dot products of each user with its item(s): ``[B, d]`` and ``[B, d]`` or
    ``[B, C, d]`` -> ``[B]`` or ``[B, C]``."""
    if item_vectors.dim() == 3:
        user_vectors = user_vectors.unsqueeze(1)
    # A broadcast product, not a batched matmul: for a few candidates per user it is about
    # twice as fast, forward, backward and double backward (SGDL's look-ahead).
    return (user_vectors * item_vectors).sum(dim=-1)


Propagation = Callable[[Tensor], Tensor]
"""One propagation step over the user-item graph: node features ``[N, d]`` -> ``[N, d]``."""


def _plain(ids: Tensor) -> Tensor:
    # Under torch.func transforms ids arrive wrapped, and a vmap-batched tensor's values
    # cannot be read (``.item()`` raises); the innermost plain tensor holds every sample's
    # ids. torch offers no public way to reach it.
    functorch = torch._C._functorch
    while functorch.is_functorch_wrapped_tensor(ids):
        ids = functorch.get_unwrapped(ids)
    return ids


def _check_range(name: str, ids: Tensor, size: int) -> None:
    ids = _plain(ids)
    if ids.numel() == 0:
        return
    low, high = (int(v) for v in torch.aminmax(ids))
    if low < 0 or high >= size:
        raise ValueError(f"{name} id {low if low < 0 else high} is out of range [0, {size})")


def check_ids(users: Tensor, items: Tensor | None, n_users: int, n_items: int) -> None:
    """Validate ``users`` ``[B]`` and ``items`` ``[B]`` / ``[B, C]`` (or ``None``).

    Raises:
        TypeError: ids that are not integer tensors.
        ValueError: wrong dimensions, mismatched batch sizes or ids out of range.
    """
    named = [("users", users)] + ([] if items is None else [("items", items)])
    for name, ids in named:
        if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor, got dtype {ids.dtype}")
    if users.dim() != 1:
        raise ValueError(f"users must have shape [B], got {tuple(users.shape)}")
    _check_range("user", users, n_users)
    if items is None:
        return
    if items.dim() not in (1, 2) or items.shape[0] != users.shape[0]:
        raise ValueError(
            f"items must have shape [B] or [B, C] with B = {users.shape[0]} (the number of "
            f"users), got {tuple(items.shape)}"
        )
    _check_range("item", items, n_items)


class FinalRepresentationModel(nn.Module):
    """A model whose score is the dot product of final user and item representations,
    computed for all nodes at once by :meth:`embeddings` (the graph models).

    ``embeddings(propagate)`` lets a training method replace the model's product with its
    normalized adjacency by another graph operator (an edge-dropout view, a learned edge
    mask) without reaching into the model.
    """

    n_users: int
    n_items: int
    user_embedding: nn.Parameter
    item_embedding: nn.Parameter
    # Class-level defaults, so that models pickled before these existed still load.
    _in_scoring_pass: bool = False
    _pass_representations: tuple[Tensor, Tensor] | None = None

    def embeddings(self, propagate: Propagation | None = None) -> tuple[Tensor, Tensor]:
        """Final representations ``[n_users, d']`` and ``[n_items, d']``; ``propagate``
        replaces the product with the model's normalized adjacency in every layer."""
        raise NotImplementedError

    @contextmanager
    def scoring_pass(self) -> Iterator[None]:
        """Within it (the parameters unchanged) :meth:`score` and :meth:`score_all` propagate
        once and reuse the final representations, which are dropped on exit. At Yelp's size
        evaluation and SGDL's memorization test would otherwise propagate the whole graph
        for each of their hundreds of chunks."""
        if self._in_scoring_pass:
            yield
            return
        self._in_scoring_pass = True
        try:
            yield
        finally:
            self._in_scoring_pass = False
            self._pass_representations = None

    def _final(self) -> tuple[Tensor, Tensor]:
        if not self._in_scoring_pass:
            return self.embeddings()
        if self._pass_representations is None:
            self._pass_representations = self.embeddings()
        return self._pass_representations

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits: ``users`` ``[B]``, ``items`` ``[B]`` or ``[B, C]`` -> ``[B]`` or ``[B, C]``."""
        check_ids(users, items, self.n_users, self.n_items)
        user_final, item_final = self._final()
        return dot_scores(F.embedding(users, user_final), F.embedding(items, item_final))

    def score_all(self, users: Tensor) -> Tensor:
        """Logits of every item: ``users`` ``[B]`` -> ``[B, n_items]``."""
        check_ids(users, None, self.n_users, self.n_items)
        user_final, item_final = self._final()
        return F.embedding(users, user_final) @ item_final.T

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Same as :meth:`score` (so ``torch.func.functional_call`` scores pairs)."""
        return self.score(users, items)

    def _final_row_factors(
        self, users: Tensor, items: Tensor, *, exact: bool
    ) -> tuple[Tensor, dict[str, RowFactor]]:
        """Scores as :meth:`score`, with the gathered final rows as the factors of the
        ``user_embedding`` and ``item_embedding`` tables."""
        check_ids(users, items, self.n_users, self.n_items)
        user_final, item_final = self.embeddings()
        user_rows, item_rows = F.embedding(users, user_final), F.embedding(items, item_final)
        return dot_scores(user_rows, item_rows), {
            "user_embedding": RowFactor(user_rows, exact=exact),
            "item_embedding": RowFactor(item_rows, items, exact=exact),
        }
