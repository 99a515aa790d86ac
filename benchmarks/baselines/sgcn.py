"""SGCN (Chen et al., SIGIR 2021): graph convolution through learned stochastic edge masks.

In every propagation layer each undirected edge ``(u, i)`` is kept by a binary mask
``z`` drawn with keep-probability ``sigmoid(a)``, where the logit ``a`` comes from a linear
scorer over the layer's endpoint features ``[x_u, x_i, x_u * x_i]``. The masked layer is
``(A_hat * Z) x``, an edge-list product that is differentiable w.r.t. the mask. The
objective adds to the backbone's loss

    beta * mean_e sigmoid(a_e)   (expected share of kept edges: the L0 term, per edge)
  + gamma * ||A_hat * Z||_*      (low rank)

Stand-ins, documented as such:

* The authors' unbiased binary-gradient estimator is replaced by a straight-through
  Gumbel-sigmoid mask (temperature ``temperature``): hard 0/1 forward, the relaxed sample's
  gradient backward. In evaluation mode the mask is deterministic: ``z = [a > 0]``.
* The nuclear norm of the ``[n_users, n_items]`` masked biadjacency is estimated by the sum
  of its top ``rank`` singular values from a randomised range finder (Halko et al., 2011),
  computed with products by the masked ``[N, N]`` adjacency, so no ``users x items`` matrix
  is ever formed.
* ``A_hat`` keeps the degree normalisation of the full graph (masked edges are not
  renormalised). The scorer's bias starts at ``init_keep_logit`` so training starts from
  (nearly) the full graph.

Graph backbones only (LightGCN, NGCF), through ``embeddings(propagate)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

from sgdl_wrap import Batch
from sgdl_wrap.adapters._common import FinalRepresentationModel, Propagation
from sgdl_wrap.adapters.graph import (
    NormalizedAdjacency,
    symmetric_sampled_dot,
    symmetric_weighted_matmul,
)
from sgdl_wrap.benchmarks.baselines.graph_models import graph_model
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.trainers import Trainer
from sgdl_wrap.data.datasets import Dataset
from sgdl_wrap.losses import per_sample_losses

__all__ = ["EdgeMask", "MaskedGraphModel", "SGCNTrainer"]


class _Threshold(torch.autograd.Function):
    """``[soft > 0.5]`` forward, identity backward (exactly 0/1, unlike ``hard + soft -
    soft.detach()``, which rounds)."""

    @staticmethod
    def forward(ctx: Any, soft: Tensor) -> Tensor:
        return (soft > 0.5).to(soft.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


class EdgeMask(nn.Module):
    """Stochastic binary masks over the undirected edges of a normalized adjacency.

    Args:
        adjacency: the model's :class:`adapters.NormalizedAdjacency`.
        dim: feature size of the propagated layers.
        temperature: of the Gumbel-sigmoid relaxation.
        init_keep_logit: initial bias of the keep logit.
    """

    crow: Tensor
    cols: Tensor
    values: Tensor
    edge_ids: Tensor
    transposed: Tensor
    forward_entries: Tensor
    edge_users: Tensor
    edge_items: Tensor

    def __init__(self, adjacency: NormalizedAdjacency, dim: int, temperature: float,
                 init_keep_logit: float) -> None:
        super().__init__()
        self.n_users, self.n_items = adjacency.n_users, adjacency.n_items
        rows, cols, values, edge_ids = adjacency.edge_list()
        self.register_buffer("crow", adjacency.crow_indices, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.register_buffer("values", values, persistent=False)
        self.register_buffer("edge_ids", edge_ids, persistent=False)
        self.register_buffer("transposed", adjacency.transposed_entries(), persistent=False)
        # The stored entry of each edge that runs from the user node to the item node,
        # in edge order.
        forward = torch.nonzero(rows < adjacency.n_users).squeeze(1)
        forward = forward[torch.argsort(edge_ids[forward])]
        self.register_buffer("forward_entries", forward, persistent=False)
        self.register_buffer("edge_users", rows[forward], persistent=False)
        self.register_buffer("edge_items", cols[forward], persistent=False)
        self.dim = dim
        self.scorer = nn.Linear(3 * dim, 1)
        nn.init.zeros_(self.scorer.weight)
        nn.init.constant_(self.scorer.bias, init_keep_logit)
        self.temperature = temperature
        self.keep_probabilities: list[Tensor] = []
        self.masks: list[Tensor] = []

    def logits(self, x: Tensor) -> Tensor:
        """Keep logits ``[n_edges]`` from node features ``x`` ``[N, d]``: the linear scorer
        over ``[x_u, x_i, x_u * x_i]``, its product term as a sampled product (no
        ``[n_edges, 3d]`` input is formed)."""
        w_user, w_item, w_both = self.scorer.weight[0].split(self.dim)
        both = symmetric_sampled_dot(self.crow, self.cols, self.transposed, x * w_both, x)
        # index_select rather than indexing: its backward adds without sorting the ids.
        return (both.index_select(0, self.forward_entries)
                + (x @ w_user).index_select(0, self.edge_users)
                + (x @ w_item).index_select(0, self.edge_items) + self.scorer.bias)

    def sample(self, logits: Tensor) -> Tensor:
        """Binary mask ``[n_edges]``: straight-through Gumbel-sigmoid in training mode,
        ``[logits > 0]`` in evaluation mode."""
        if not self.training:
            return (logits > 0).to(logits.dtype)
        uniform = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
        noise = torch.log(uniform) - torch.log1p(-uniform)
        return cast(Tensor, _Threshold.apply(torch.sigmoid((logits + noise) / self.temperature)))

    def propagate(self, x: Tensor) -> Tensor:
        """``(A_hat * Z) x`` for ``x`` ``[N, d]`` with a fresh mask; records the layer's keep
        probabilities and mask for the regularisers."""
        logits = self.logits(x)
        mask = self.sample(logits)
        self.keep_probabilities.append(torch.sigmoid(logits))
        self.masks.append(mask)
        return symmetric_weighted_matmul(self.crow, self.cols, self.masked_values(mask), x)

    def masked_values(self, mask: Tensor) -> Tensor:
        """The stored entries ``[nnz]`` of ``A_hat * Z`` for a mask ``[n_edges]``."""
        return self.values * mask.index_select(0, self.edge_ids)

    def reset(self) -> None:
        """Forget the masks of the previous forward pass."""
        self.keep_probabilities, self.masks = [], []

    def nuclear_norm_estimate(self, mask: Tensor, rank: int) -> Tensor:
        """Sum of the top ``rank`` singular values of the masked biadjacency
        ``[n_users, n_items]`` (randomised range finder, one pass).

        The masked ``[N, N]`` adjacency is ``[[0, B], [B^T, 0]]``, so ``B y`` and ``B^T q``
        are blocks of its products with ``[0; y]`` and ``[q; 0]``."""
        values = self.masked_values(mask)
        probe = torch.randn(self.n_items, rank, dtype=values.dtype, device=values.device)
        no_users = values.new_zeros(self.n_users, rank)
        no_items = values.new_zeros(self.n_items, rank)
        sketch = symmetric_weighted_matmul(self.crow, self.cols, values,
                                           torch.cat([no_users, probe]))[: self.n_users]
        basis, _ = torch.linalg.qr(sketch)
        # B^T basis [n_items, rank] has the singular values of basis^T B.
        projected = symmetric_weighted_matmul(self.crow, self.cols, values,
                                              torch.cat([basis, no_items]))[self.n_users:]
        return torch.linalg.svdvals(projected).sum()


class MaskedGraphModel(FinalRepresentationModel):
    """A graph backbone whose every propagation layer goes through ``mask``; scores, like
    the backbone's, are dot products of final representations."""

    def __init__(self, backbone: FinalRepresentationModel, mask: EdgeMask) -> None:
        super().__init__()
        self.n_users, self.n_items = backbone.n_users, backbone.n_items
        self.backbone = backbone
        self.mask = mask

    def embeddings(self, propagate: Propagation | None = None) -> tuple[Tensor, Tensor]:
        self.mask.reset()
        return self.backbone.embeddings(propagate or self.mask.propagate)


@dataclass(frozen=True)
class SGCNSettings:
    """Regulariser weights (not tuned), relaxation temperature and the low-rank sketch."""

    beta: float = 0.01
    gamma: float = 0.001
    temperature: float = 0.5
    rank: int = 16
    init_keep_logit: float = 3.0

    def __post_init__(self) -> None:
        if self.beta < 0 or self.gamma < 0 or self.temperature <= 0 or self.rank <= 0:
            raise ValueError(f"invalid SGCN settings {self}")


class SGCNTrainer(Trainer):
    """The backbone's loss with learned edge masks in every layer, plus the sparsity and
    low-rank regularisers; the mask scorer trains with the model's optimizer."""

    name = "sgcn"
    Settings = SGCNSettings

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        super().__init__(data, config)
        backbone, adjacency = graph_model(self.model, self.name)
        s = self.settings
        self.mask = EdgeMask(adjacency, backbone.user_embedding.shape[1], s.temperature,
                             s.init_keep_logit).to(self.device)
        self.masked = MaskedGraphModel(backbone, self.mask)
        self.model = self.masked
        self.optimizer = self.new_optimizer()

    def batch_loss(self, batch: Batch, where: str) -> Tensor:
        s = self.settings
        recommendation = per_sample_losses(self.recommender, self.loss, batch, where=where).mean()
        sparsity = torch.stack([p.mean() for p in self.mask.keep_probabilities]).mean()
        low_rank = torch.stack([
            self.mask.nuclear_norm_estimate(mask, s.rank)
            for mask in self.mask.masks
        ]).mean()
        return recommendation + s.beta * sparsity + s.gamma * low_rank

    def diagnostics(self) -> dict[str, Any]:
        self.model.eval()
        with torch.no_grad():
            self.masked.embeddings()
        kept = [float(mask.mean()) for mask in self.mask.masks]
        return {"kept_edge_share_per_layer": kept}
