"""IR (Wang et al., ACM MM 2021): iterative relabelling of the observed interactions.

Training runs in rounds. Each round trains a freshly initialised model on the current
positives; between rounds the last model relabels: per user, of the *originally observed*
items ranked by score, the top ``pos_rate`` share stays positive and the bottom
``neg_rate`` share becomes a pseudo-negative (dropped from the positives, so it can be
drawn as a negative), and the user's ``plus`` best-scored unobserved items become new
positives.

Approximations, both forced by the budget or by model-agnosticism:

* The authors classify the observed items between the two shares by their distance to the
  mean *item embeddings* of each share; with only ``score`` available here those items stay
  positive (with the default shares 0.35 + 0.65 at most one item per user is in between).
* The authors run 30 rounds, each trained to convergence. Here ``rounds`` rounds of
  ``epochs_per_round`` epochs each (defaults 3 x 10); early stopping may end only the last.
  Model selection keeps the best validation checkpoint over all rounds. Graph models keep
  the graph of the observed interactions; relabelling changes their training pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sgdl_wrap import Interactions, Recommender, UniformNegativeSampler
from sgdl_wrap.benchmarks.running.models import MODELS
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.trainers import Trainer
from sgdl_wrap.data.datasets import Dataset

__all__ = ["IRTrainer", "relabel"]


@torch.no_grad()
def relabel(
    model: Recommender,
    observed: Interactions,
    *,
    pos_rate: float,
    neg_rate: float,
    plus: int,
    batch_users: int = 256,
) -> Interactions:
    """The positives of the next round (see the module docstring); no noisy flags."""
    csr = observed.csr
    counts = csr.counts()
    users_out: list[np.ndarray] = []
    items_out: list[np.ndarray] = []
    active = np.flatnonzero(counts > 0)
    for start in range(0, active.size, batch_users):
        chunk = active[start : start + batch_users]
        scores = model.score_all(torch.from_numpy(chunk)).float().cpu()
        position, items = csr.gather(chunk)
        observed_scores = scores[torch.from_numpy(position), torch.from_numpy(items)].numpy()
        scores[torch.from_numpy(position), torch.from_numpy(items)] = -torch.inf
        extra = scores.topk(min(plus, scores.shape[1]), dim=1) if plus > 0 else None
        for row, user in enumerate(chunk):
            mine = position == row
            user_items, user_scores = items[mine], observed_scores[mine]
            n = user_items.size
            dropped = max(int(n * neg_rate), 1) if n > 1 else 0
            kept = max(int(n * pos_rate), 1)
            order = np.argsort(-user_scores, kind="stable")
            keep = order[: max(kept, n - dropped)]
            chosen = [user_items[keep]]
            if extra is not None:
                finite = torch.isfinite(extra.values[row])
                chosen.append(extra.indices[row][finite].numpy())
            merged = np.concatenate(chosen)
            users_out.append(np.full(merged.size, user, dtype=np.int64))
            items_out.append(merged)
    return Interactions(np.concatenate(users_out), np.concatenate(items_out),
                        observed.n_users, observed.n_items)


@dataclass(frozen=True)
class IRSettings:
    """Round budget and the authors' relabelling shares."""

    rounds: int = 3
    epochs_per_round: int = 10
    pos_rate: float = 0.35
    neg_rate: float = 0.65
    plus: int = 6

    def __post_init__(self) -> None:
        if self.rounds <= 0 or self.epochs_per_round <= 0 or self.plus < 0:
            raise ValueError(f"invalid IR settings {self}")
        if not (0 < self.pos_rate <= 1 and 0 <= self.neg_rate < 1
                and self.pos_rate + self.neg_rate <= 1):
            raise ValueError(f"need 0 < pos_rate, 0 <= neg_rate, pos_rate + neg_rate <= 1: {self}")


class IRTrainer(Trainer):
    """Rounds of training from scratch on iteratively relabelled positives."""

    name = "ir"
    Settings = IRSettings

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        super().__init__(data, config)
        self.round = 0
        self.new_round = False
        self.round_sizes = [len(data.train)]

    def train_epoch(self, epoch: int) -> float:
        s = self.settings
        self.new_round = epoch > 0 and epoch % s.epochs_per_round == 0 and self.round < s.rounds - 1
        if self.new_round:
            self._next_round()
        return super().train_epoch(epoch)

    def _next_round(self) -> None:
        s = self.settings
        self.model.eval()
        self.positives = relabel(self.recommender, self.data.train, pos_rate=s.pos_rate,
                                 neg_rate=s.neg_rate, plus=s.plus)
        self.round += 1
        self.round_sizes.append(len(self.positives))
        torch.manual_seed(self.config.seed + self.round)
        self.model = MODELS[self.config.model].build(self.data.train).to(self.device)
        self.optimizer = self.new_optimizer()
        self.sampler = UniformNegativeSampler(self.positives)

    @property
    def may_stop(self) -> bool:
        return self.round == self.settings.rounds - 1

    @property
    def regime_changed(self) -> bool:
        return self.new_round

    def diagnostics(self) -> dict[str, Any]:
        return {"rounds_run": self.round + 1, "positives_per_round": self.round_sizes}
