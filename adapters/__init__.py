"""Reference models from the SGDL paper (NeuMF, CDAE, NGCF, LightGCN) and their losses.

Each model implements :class:`sgdl_wrap.Recommender`: ``score(users, items)`` and
``score_all(users)`` return logits, and ``forward`` is ``score`` so that
``torch.func.functional_call`` can evaluate a model under swapped parameters.
"""

from adapters.cdae import CDAE
from adapters.graph import EdgeList, NormalizedAdjacency, SparseMatrix, sparse_matmul
from adapters.lightgcn import LightGCN
from adapters.losses import BCELoss, BPRLoss
from adapters.neumf import NeuMF
from adapters.ngcf import NGCF

__all__ = [
    "BCELoss",
    "BPRLoss",
    "CDAE",
    "EdgeList",
    "LightGCN",
    "NGCF",
    "NeuMF",
    "NormalizedAdjacency",
    "SparseMatrix",
    "sparse_matmul",
]
