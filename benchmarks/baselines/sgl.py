"""SGL-ED (Wu et al., SIGIR 2021): self-supervised graph learning with edge dropout.

Each epoch draws two subgraphs, each keeping every undirected edge with probability
``1 - rho`` and renormalised symmetrically. Each batch adds to the backbone's BPR loss a
contrastive term between the two views: the L2-normalised final representations of the
batch's distinct users (and items) in view 1 against those of *all* users (items) in
view 2, InfoNCE with temperature ``tau``:

    loss = BPR + lambda1 * (InfoNCE_users + InfoNCE_items) + l2 * ||E^(0)_batch||^2 / B

Graph backbones only (LightGCN, NGCF), through ``embeddings(propagate)``.

Measured on ML-100K with LightGCN, batch 128 and the authors' defaults: at Xavier
initialisation the contrastive term's gradient w.r.t. the user table is about 150 times
the BPR term's, and the BPR loss stays at ``log 2`` for the first epochs (the authors train
with batches of 2048 for up to 1000 epochs). Runs capped at a few epochs therefore show
SGL-ED near chance; ``lambda1`` is the setting to change (``--set lambda1=...``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from sgdl_wrap import Batch
from sgdl_wrap.adapters.graph import SparseMatrix, sparse_matmul
from sgdl_wrap.benchmarks.baselines.graph_models import graph_model
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.trainers import Trainer
from sgdl_wrap.data.datasets import Dataset
from sgdl_wrap.losses import per_sample_losses

__all__ = ["SGLTrainer", "info_nce"]


def info_nce(view1: Tensor, view2: Tensor, nodes: Tensor, tau: float) -> Tensor:
    """Mean InfoNCE of ``nodes`` ``[b]``: row ``n`` of ``view1`` ``[N, d]`` against all rows
    of ``view2`` ``[N, d]``, its own row being the positive."""
    anchors = F.normalize(view1[nodes], dim=1)
    candidates = F.normalize(view2, dim=1)
    logits = anchors @ candidates.T / tau
    return F.cross_entropy(logits, nodes)


@dataclass(frozen=True)
class SGLSettings:
    """The authors' defaults."""

    rho: float = 0.1
    tau: float = 0.2
    lambda1: float = 0.1
    l2: float = 1e-4

    def __post_init__(self) -> None:
        if not 0 <= self.rho < 1 or self.tau <= 0 or self.lambda1 < 0 or self.l2 < 0:
            raise ValueError(f"invalid SGL settings {self}")


class SGLTrainer(Trainer):
    """BPR plus the two-view contrastive loss, views redrawn every epoch."""

    name = "sgl"
    Settings = SGLSettings

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        super().__init__(data, config)
        self.graph, self.adjacency = graph_model(self.model, self.name)
        self.views: tuple[SparseMatrix, SparseMatrix] | None = None

    def draw_views(self) -> tuple[SparseMatrix, SparseMatrix]:
        """Two independent edge-dropout subgraphs of the training graph."""
        n_edges, device = self.adjacency.n_edges, self.adjacency.values.device
        keep_rate = 1.0 - self.settings.rho
        return (
            self.adjacency.subgraph(torch.rand(n_edges, device=device) < keep_rate),
            self.adjacency.subgraph(torch.rand(n_edges, device=device) < keep_rate),
        )

    def train_epoch(self, epoch: int) -> float:
        self.views = self.draw_views()
        return super().train_epoch(epoch)

    def batch_loss(self, batch: Batch, where: str) -> Tensor:
        assert self.views is not None
        s = self.settings
        recommendation = per_sample_losses(self.recommender, self.loss, batch, where=where).mean()
        n_users = self.graph.n_users
        views = [
            torch.cat(self.graph.embeddings(functools.partial(sparse_matmul, matrix)))
            for matrix in self.views
        ]
        users = batch.users.unique()
        items = batch.candidates.unique()
        contrast = info_nce(views[0][:n_users], views[1][:n_users], users, s.tau) + info_nce(
            views[0][n_users:], views[1][n_users:], items, s.tau
        )
        ego = torch.cat([self.graph.user_embedding[users], self.graph.item_embedding[items]])
        return recommendation + s.lambda1 * contrast + s.l2 * ego.pow(2).sum() / len(batch)
