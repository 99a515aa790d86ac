"""Checks shared by the baselines that need the graph of a graph model."""

from __future__ import annotations

from torch import nn

from sgdl_wrap.adapters._common import FinalRepresentationModel
from sgdl_wrap.adapters.graph import NormalizedAdjacency

__all__ = ["graph_model"]


def graph_model(model: nn.Module, method: str) -> tuple[FinalRepresentationModel,
                                                        NormalizedAdjacency]:
    """``model`` as a graph model with its normalized adjacency, or a clear error."""
    adjacency = getattr(model, "adjacency", None)
    if not isinstance(model, FinalRepresentationModel) or not isinstance(
        adjacency, NormalizedAdjacency
    ):
        raise ValueError(
            f"{method} needs a graph model (embeddings(propagate) and a NormalizedAdjacency "
            f"'adjacency'), got {type(model).__name__}"
        )
    return model, adjacency
