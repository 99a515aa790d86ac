"""The four reference models with the paper's settings (Sec. 4.1.4) and their losses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from sgdl_wrap import Interactions, PerSampleLoss
from sgdl_wrap.adapters import CDAE, NGCF, BCELoss, BPRLoss, LightGCN, NeuMF

__all__ = ["BATCH_SIZES", "MODELS", "ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build a reference model, which loss trains it, and its paper learning rate."""

    build: Callable[[Interactions], nn.Module]
    make_loss: Callable[[], PerSampleLoss]
    lr: float


MODELS: dict[str, ModelSpec] = {
    "neumf": ModelSpec(lambda t: NeuMF(t.n_users, t.n_items), lambda: BCELoss(1), 1e-3),
    "cdae": ModelSpec(lambda t: CDAE(t), lambda: BCELoss(1), 1e-3),
    "ngcf": ModelSpec(lambda t: NGCF(t), lambda: BPRLoss(1), 1e-4),
    "lightgcn": ModelSpec(lambda t: LightGCN(t), lambda: BPRLoss(1), 1e-3),
}

# Paper: 128 for MovieLens, 1024 for Adressa, 2048 for Yelp.
BATCH_SIZES = {"ml100k": 128, "ml100k-full": 128, "adressa": 1024, "yelp": 2048, "synthetic": 128}
