"""DeCA (Wang et al., WWW 2022): denoising through the agreement of two models.

With ``p`` the target model's ``P(r = 1 | u, i)``, ``q`` an auxiliary model's, and ``r`` the
unobserved true label, each pointwise term (:mod:`sgdl_wrap.benchmarks.baselines.pointwise`) costs

    alpha * KL(q || p) + (1 - alpha) * KL(p || q) - E_{r ~ Bern(p)} log P(y_obs | r)

with Bernoulli KLs (logs of ``x + 1e-5``). The likelihood alternates between two noise models
from batch to batch ("iterative" DeCA), each a small MF ``h``:

* DP (noisy positives), ``h1 = P(y = 1 | r = 0)``: positive ``-(1 - p) log h1``,
  negative ``-[(1 - p) log(1 - h1) - C1 p]``;
* DN (noisy negatives), ``h2 = P(y = 1 | r = 1)``: positive ``-[p log h2 - C2 (1 - p)]``,
  negative ``-p log(1 - h2)``.

The auxiliary model is a jointly trained MF (dimension 32); target, auxiliary and both
noise models share one Adam optimizer at the run's learning rate. As in the authors'
code, ``lambda0 * ||theta||^2 / (2 n_users)`` regularises the target model. DeCA is
pointwise: BPR backbones (NGCF, LightGCN) are trained here with BCE and one negative, as
the SGDL paper must have done to report them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from sgdl_wrap import Batch
from sgdl_wrap.adapters import BCELoss
from sgdl_wrap.benchmarks.baselines.pointwise import pointwise_terms
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.trainers import Trainer
from sgdl_wrap.data.datasets import Dataset

__all__ = ["DeCATrainer", "MatrixFactorization", "deca_terms"]

_EPS = 1e-5


class MatrixFactorization(nn.Module):
    """Logits ``<P_u, Q_i>``: ``users`` ``[B]``, ``items`` ``[B, C]`` -> ``[B, C]``."""

    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user_embedding.weight, std=0.01)
        nn.init.normal_(self.item_embedding.weight, std=0.01)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        return torch.einsum("bd,bcd->bc", self.user_embedding(users), self.item_embedding(items))


def _kl(a: Tensor, b: Tensor) -> Tensor:
    """Bernoulli ``KL(a || b)`` elementwise."""
    return a * torch.log((a + _EPS) / (b + _EPS)) + (1 - a) * torch.log(
        (1 - a + _EPS) / (1 - b + _EPS)
    )


def deca_terms(
    p: Tensor, q: Tensor, h: Tensor, labels: Tensor, *, mode: str, alpha: float, penalty: float
) -> Tensor:
    """Per-term DeCA losses, all arguments and the result ``[B, C]``.

    Args:
        p: target probabilities; q: auxiliary probabilities; h: the noise model's output
            (``h1`` in ``"dp"`` mode, ``h2`` in ``"dn"`` mode); labels: observed 0/1.
        mode: ``"dp"`` (noisy positives) or ``"dn"`` (noisy negatives).
        alpha: weight of ``KL(q || p)`` against ``KL(p || q)``.
        penalty: ``C1`` in DP mode, ``C2`` in DN mode.
    """
    agreement = alpha * _kl(q, p) + (1 - alpha) * _kl(p, q)
    log_h, log_not_h = torch.log(h + _EPS), torch.log(1 - h + _EPS)
    if mode == "dp":
        positive = -(1 - p) * log_h
        negative = -((1 - p) * log_not_h - penalty * p)
    elif mode == "dn":
        positive = -(p * log_h - penalty * (1 - p))
        negative = -p * log_not_h
    else:
        raise ValueError(f"mode must be 'dp' or 'dn', got {mode!r}")
    return agreement + torch.where(labels > 0, positive, negative)


@dataclass(frozen=True)
class DeCASettings:
    """Defaults: the authors' configuration for NeuMF on ML-100K."""

    c1: float = 1000.0
    c2: float = 10.0
    alpha: float = 1.0
    lambda0: float = 0.01
    aux_dim: int = 32

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0 or self.c1 < 0 or self.c2 < 0 or self.lambda0 < 0:
            raise ValueError(f"invalid DeCA settings {self}")


class DeCATrainer(Trainer):
    """DeCA with a jointly trained MF auxiliary model, alternating DP and DN each batch."""

    name = "deca"
    Settings = DeCASettings

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        super().__init__(data, config)
        self.loss = BCELoss(1)
        n_users, n_items, dim = data.train.n_users, data.train.n_items, self.settings.aux_dim
        self.auxiliary = MatrixFactorization(n_users, n_items, dim).to(self.device)
        self.noise_models = nn.ModuleDict({
            "dp": MatrixFactorization(n_users, n_items, dim),
            "dn": MatrixFactorization(n_users, n_items, dim),
        }).to(self.device)
        parameters = [*self.model.parameters(), *self.auxiliary.parameters(),
                      *self.noise_models.parameters()]
        self.optimizer = torch.optim.Adam(parameters, lr=config.resolved_lr())
        self.step = 0

    def batch_loss(self, batch: Batch, where: str) -> Tensor:
        s = self.settings
        mode = "dp" if self.step % 2 == 0 else "dn"
        self.step += 1
        users, items = batch.users, batch.candidates
        scores = self.recommender.score(users, items)
        _, labels = pointwise_terms(scores)
        noise_model = cast(MatrixFactorization, self.noise_models[mode])
        terms = deca_terms(
            torch.sigmoid(scores), torch.sigmoid(self.auxiliary(users, items)),
            torch.sigmoid(noise_model(users, items)), labels, mode=mode, alpha=s.alpha,
            penalty=s.c1 if mode == "dp" else s.c2,
        )
        norm = sum(p.pow(2).sum() for p in self.model.parameters())
        return terms.sum(dim=1).mean() + s.lambda0 * norm / (2 * self.data.train.n_users)
