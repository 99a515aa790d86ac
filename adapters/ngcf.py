"""NGCF (Wang et al., SIGIR 2019): graph collaborative filtering with bi-interaction messages."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sgdl_wrap.adapters._common import FinalRepresentationModel, Propagation
from sgdl_wrap.adapters.graph import NormalizedAdjacency
from sgdl_wrap.data.interactions import Interactions
from sgdl_wrap.phase2.features import RowFactor

__all__ = ["NGCF"]


class NGCF(FinalRepresentationModel):
    """NGCF with the SGDL paper's settings (embedding 64, 3 layers, node dropout 0.1).

    One layer, with ``S = A_hat E`` the neighbourhood sum over the normalized adjacency of
    ``train``::

        E' = LeakyReLU_0.2(S W1 + b1) + LeakyReLU_0.2((E * S) W2 + b2)

    followed by message dropout; the representation is the concatenation of ``E^(0)`` and
    the L2-normalised outputs of every layer, ``[*, d * (layers + 1)]``, and a score is a dot
    product. As in the authors' code the two terms are activated separately, and the
    self-connection of the paper's ``(L + I)`` is left out: ``A_hat`` is the same matrix as
    LightGCN's.

    Node dropout (training mode only) drops edges of ``A_hat`` and rescales the rest, once per
    call, shared by all layers. Because propagation relies on ``A_hat`` being symmetric, an
    undirected edge is dropped in both directions together (the authors' code drops the two
    directed entries independently). It builds a new sparse matrix per call, which cannot
    happen inside ``torch.func`` transforms: use eval mode (or ``node_dropout=0``) there.

    Args:
        train: training interactions; they define the graph (built once, here).
        dim: embedding and layer size ``d``.
        layers: number of propagation layers.
        node_dropout: probability of dropping an edge per training call.
        message_dropout: dropout on each layer's output in training mode.

    Parameters: ``user_embedding`` ``[n_users, d]``, ``item_embedding`` ``[n_items, d]``, and
    per layer ``side_weights[k]`` (W1) and ``interaction_weights[k]`` (W2), ``d -> d`` linear
    maps; weights Xavier-uniform, biases zero, drawn from torch's global RNG.
    """

    def __init__(
        self,
        train: Interactions,
        dim: int = 64,
        layers: int = 3,
        node_dropout: float = 0.1,
        message_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if dim <= 0 or layers < 0:
            raise ValueError(f"need dim > 0 and layers >= 0, got dim={dim}, layers={layers}")
        if not 0.0 <= node_dropout < 1.0:
            raise ValueError(f"node_dropout must be in [0, 1), got {node_dropout}")
        self.n_users = train.n_users
        self.n_items = train.n_items
        self.node_dropout = node_dropout
        self.user_embedding = nn.Parameter(torch.empty(train.n_users, dim))
        self.item_embedding = nn.Parameter(torch.empty(train.n_items, dim))
        self.side_weights = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.interaction_weights = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.message_dropout = nn.Dropout(message_dropout)
        self.adjacency = NormalizedAdjacency(train)
        nn.init.xavier_uniform_(self.user_embedding)
        nn.init.xavier_uniform_(self.item_embedding)
        for linear in [*self.side_weights, *self.interaction_weights]:
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def embeddings(self, propagate: Propagation | None = None) -> tuple[Tensor, Tensor]:
        """Final representations: ``[n_users, d * (layers + 1)]`` and
        ``[n_items, d * (layers + 1)]``; ``propagate`` (default: ``A_hat @`` with node
        dropout in training mode) is the graph operator of every layer."""
        step = propagate
        if step is None:
            matrix = None
            if self.training and self.node_dropout > 0:
                matrix = self.adjacency.edge_dropout(self.node_dropout)
            step = functools.partial(self.adjacency.matmul, matrix=matrix)
        layer = torch.cat([self.user_embedding, self.item_embedding])
        outputs = [layer]
        for side_weight, interaction_weight in zip(
            self.side_weights, self.interaction_weights, strict=True
        ):
            side = step(layer)
            layer = F.leaky_relu(side_weight(side), 0.2) + F.leaky_relu(
                interaction_weight(layer * side), 0.2
            )
            layer = self.message_dropout(layer)
            outputs.append(F.normalize(layer, dim=1))
        return torch.cat(outputs, dim=1).split([self.n_users, self.n_items])

    def per_sample_factors(
        self, users: Tensor, items: Tensor
    ) -> tuple[Tensor, dict[str, RowFactor]]:
        """Scores as :meth:`score` plus gradient factors for SGDL's scheduler features.

        As LightGCN's: the gathered final representations stand for the embedding tables (exact when
        ``layers == 0``), and the layers' weights, which every sample reaches through propagation,
        get no column. Unlike LightGCN's, this approximation agrees poorly with the exact loop (on
        ML-100K: mean absolute cosine difference 0.19, correlation about 0.1;
        :mod:`sgdl_wrap.benchmarks.studies.per_sample_agreement`): pass
        ``SGDLConfig(per_sample_gradients="loop")`` when exact features matter more than speed.
        """
        return self._final_row_factors(users, items, exact=len(self.side_weights) == 0)
