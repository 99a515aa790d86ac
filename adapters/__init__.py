"""Reference models from the SGDL paper (NeuMF, CDAE, NGCF, LightGCN) and their losses.

Each model implements :class:`sgdl_wrap.Recommender`: ``score(users, items)`` and
``score_all(users)`` return logits, and ``forward`` is ``score`` so that
``torch.func.functional_call`` can evaluate a model under swapped parameters.
"""

from sgdl_wrap.adapters.cdae import CDAE
from sgdl_wrap.adapters.graph import EdgeList, NormalizedAdjacency, SparseMatrix, sparse_matmul
from sgdl_wrap.adapters.lightgcn import LightGCN
from sgdl_wrap.adapters.losses import BCELoss, BPRLoss
from sgdl_wrap.adapters.neumf import NeuMF
from sgdl_wrap.adapters.ngcf import NGCF

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
