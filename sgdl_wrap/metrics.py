r"""Full-ranking top-K metrics, streamed over batches of users.

For a user ``u`` with relevant (held-out) items ``T_u`` and the top-``K`` list ``r_1..r_K`` of
all items that are not excluded (the user's training positives, and on test also the
validation positives), with ``hit_j = 1[r_j \in T_u]``:

* ``Recall@K    = sum_j hit_j / |T_u|``
* ``Precision@K = sum_j hit_j / K``
* ``NDCG@K      = DCG@K / IDCG@K`` with ``DCG@K = sum_j hit_j / log2(j + 1)`` and
  ``IDCG@K = sum_{j=1}^{min(K, |T_u|)} 1 / log2(j + 1)``

Each metric is averaged over the users with ``|T_u| > 0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from sgdl_wrap.data.interactions import Interactions
from sgdl_wrap.protocols import Recommender, scoring_pass

__all__ = ["RankingMetrics", "evaluate", "metric_names"]

METRICS = ("recall", "ndcg", "precision")


def metric_names(ks: Sequence[int]) -> list[str]:
    """Keys of the metric dictionaries, e.g. ``recall@5``, in a stable order."""
    return [f"{name}@{k}" for name in METRICS for k in ks]


class RankingMetrics:
    """Streaming accumulator: feed hit matrices batch by batch, read averages at the end."""

    def __init__(self, ks: Sequence[int] = (5, 20)) -> None:
        if not ks or any(int(k) <= 0 for k in ks):
            raise ValueError(f"cut-offs must be positive integers, got {list(ks)}")
        self.ks = tuple(sorted({int(k) for k in ks}))
        self._sums = dict.fromkeys(metric_names(self.ks), 0.0)
        self._users = 0
        # discount[j] = 1 / log2(j + 2): position j (0-based) of the list.
        self._discount = 1.0 / torch.log2(torch.arange(2, max(self.ks) + 2, dtype=torch.float64))
        self._ideal = torch.cumsum(self._discount, 0)

    @property
    def max_k(self) -> int:
        return self.ks[-1]

    @property
    def num_users(self) -> int:
        return self._users

    def update(self, hits: Tensor, num_relevant: Tensor) -> None:
        """Add a batch of users.

        Args:
            hits: ``[b, L]`` (bool or 0/1) relevance of each user's top-``L`` items, in rank
                order, ``L >= max(ks)``, or fewer columns only if there are fewer items.
            num_relevant: ``[b]`` number of relevant items of each user; users with 0 are
                skipped.
        """
        if hits.dim() != 2 or num_relevant.shape != hits.shape[:1]:
            raise ValueError(
                f"hits must be [b, L] and num_relevant [b], got {tuple(hits.shape)} and "
                f"{tuple(num_relevant.shape)}"
            )
        keep = num_relevant > 0
        hits = hits[keep].to(torch.float64)
        relevant = num_relevant[keep].to(torch.float64)
        if hits.numel() == 0 and relevant.numel() == 0:
            return
        for k in self.ks:
            top = hits[:, :k]
            found = top.sum(dim=1)
            dcg = (top * self._discount[: top.shape[1]]).sum(dim=1)
            ideal = self._ideal[(relevant.clamp(max=k) - 1).long()]
            self._sums[f"recall@{k}"] += float((found / relevant).sum())
            self._sums[f"precision@{k}"] += float(found.sum() / k)
            self._sums[f"ndcg@{k}"] += float((dcg / ideal).sum())
        self._users += int(relevant.numel())

    def compute(self) -> dict[str, float]:
        """Averages over the users seen so far (0.0 for every metric if none)."""
        if self._users == 0:
            return dict.fromkeys(self._sums, 0.0)
        return {name: total / self._users for name, total in self._sums.items()}


@torch.no_grad()
def evaluate(
    model: Recommender,
    target: Interactions,
    *,
    exclude: Sequence[Interactions] = (),
    ks: Sequence[int] = (5, 20),
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Full-ranking metrics of ``model`` against ``target`` (see the module docstring).

    Args:
        model: scores all items with ``score_all``; put in eval mode for the call, then
            restored to its previous mode.
        target: the relevant interactions (validation or test positives).
        exclude: interactions never ranked, e.g. ``[train]`` for validation and
            ``[train, valid]`` for test.
        ks: cut-offs.
        batch_size: users scored at once; memory is ``O(batch_size * n_items)``.
        device: where the user ids go (default: the model's first parameter's device).
    """
    for other in exclude:
        if (other.n_users, other.n_items) != (target.n_users, target.n_items):
            raise ValueError(
                f"excluded interactions live in a {other.n_users}x{other.n_items} id space, "
                f"the target in {target.n_users}x{target.n_items}"
            )
    if device is None:
        first = next(iter(getattr(model, "parameters", lambda: iter(()))()), None)
        device = first.device if first is not None else "cpu"
    metrics = RankingMetrics(ks)
    users = np.flatnonzero(target.user_counts > 0)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with scoring_pass(model):
            for start in range(0, users.size, batch_size):
                chunk = users[start : start + batch_size]
                scores = model.score_all(torch.from_numpy(chunk).to(device)).float()
                for other in exclude:
                    position, items = other.csr.gather(chunk)
                    scores[torch.from_numpy(position), torch.from_numpy(items)] = -torch.inf
                position, items = target.csr.gather(chunk)
                relevant = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
                relevant[torch.from_numpy(position), torch.from_numpy(items)] = True
                top = scores.topk(min(metrics.max_k, scores.shape[1]), dim=1).indices
                metrics.update(relevant.gather(1, top).cpu(), relevant.sum(dim=1).cpu())
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return metrics.compute()
