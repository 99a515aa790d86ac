"""The per-epoch memorization test (SGDL Sec. 3.1.1) and the per-sample training losses.

For a user with ``N_u`` training positives, the positive ``(u, i)`` is *memorized* at this
epoch when ``i`` is in the user's top-``N_u`` of a candidate list:

* ``"sampled"`` (the authors' code): the ``N_u`` positives plus ``N_u`` freshly sampled
  non-positive items (one per training row);
* ``"full"`` (the paper): all items.

One scoring pass also yields every training row's per-sample loss, which the noise-rate
estimate needs, so both come out of :func:`memorization_pass`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch

from sgdl_wrap.data.interactions import Interactions
from sgdl_wrap.data.sampling import NegativeSampler
from sgdl_wrap.losses import check_per_sample
from sgdl_wrap.protocols import PerSampleLoss, Recommender, scoring_pass

__all__ = ["MemorizationPass", "MemorizationTest", "memorization_pass"]

MemorizationTest = Literal["sampled", "full"]


@dataclass(frozen=True)
class MemorizationPass:
    """Marks and losses of every training row, ``[N]`` each."""

    marks: npt.NDArray[np.bool_]
    losses: npt.NDArray[np.float64]


def _sampled_marks(
    users: npt.NDArray[np.int64],
    positive_scores: npt.NDArray[np.float64],
    negative_scores: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    n = users.size
    all_users = np.concatenate([users, users])
    all_scores = np.concatenate([positive_scores, negative_scores])
    # Sort by user, then by score descending; positives come first among equal scores.
    order = np.lexsort((np.arange(2 * n), -all_scores, all_users))
    group_start = np.concatenate([[0], np.cumsum(2 * counts)[:-1]])
    rank = np.empty(2 * n, dtype=np.int64)
    rank[order] = np.arange(2 * n) - group_start[all_users[order]]
    return rank[:n] < counts[users]


@torch.no_grad()
def memorization_pass(
    model: Recommender,
    loss: PerSampleLoss,
    train: Interactions,
    sampler: NegativeSampler,
    generator: np.random.Generator,
    *,
    test: MemorizationTest = "sampled",
    batch_size: int = 4096,
    user_batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> MemorizationPass:
    """Score every training row once (eval mode) and run the memorization test.

    Each row gets ``max(1, loss.num_negatives)`` fresh negatives; the first one is the
    row's candidate in the ``"sampled"`` test, all of them feed the per-sample loss.
    """
    if test not in ("sampled", "full"):
        raise ValueError(f"unknown memorization test {test!r}; use 'sampled' or 'full'")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with scoring_pass(model):
            k = max(1, loss.num_negatives)
            n = len(train)
            negatives = sampler.sample(train.users, k, generator)
            scores = np.empty((n, 1 + k), dtype=np.float64)
            losses = np.empty(n, dtype=np.float64)
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                users = torch.tensor(train.users[start:stop], device=device)
                candidates = np.concatenate(
                    [train.items[start:stop, None], negatives[start:stop]], axis=1
                )
                batch_scores = model.score(users, torch.from_numpy(candidates).to(device))
                scores[start:stop] = batch_scores.double().cpu().numpy()
                batch_losses = loss(batch_scores[:, : 1 + loss.num_negatives])
                where = f"the memorization pass (rows {start}..{stop - 1})"
                losses[start:stop] = check_per_sample(batch_losses, stop - start, where=where).cpu()
            counts = train.user_counts
            if test == "sampled":
                marks = _sampled_marks(train.users, scores[:, 0], scores[:, 1], counts)
            else:
                marks = _full_ranking_marks(model, train, user_batch_size, device)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return MemorizationPass(marks=marks, losses=losses)


def _full_ranking_marks(
    model: Recommender, train: Interactions, user_batch_size: int, device: torch.device | str
) -> npt.NDArray[np.bool_]:
    marks = np.zeros(len(train), dtype=bool)
    csr = train.csr
    counts = csr.counts()
    users = np.flatnonzero(counts > 0)
    for start in range(0, users.size, user_batch_size):
        chunk = users[start : start + user_batch_size]
        scores = model.score_all(torch.from_numpy(chunk).to(device)).double()
        depth = int(counts[chunk].max())
        top = scores.topk(min(depth, scores.shape[1]), dim=1).values
        threshold = top.gather(1, torch.from_numpy(counts[chunk] - 1).to(top.device)[:, None])
        position, index = csr.slots(chunk)
        positive = scores[torch.from_numpy(position), torch.from_numpy(csr.items[index])]
        memorized = positive >= threshold[torch.from_numpy(position), 0]
        marks[csr.rows[index]] = memorized.cpu().numpy()
    return marks
