"""CDAE (Wu et al., WSDM 2016): a collaborative denoising autoencoder over users' item sets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sgdl_wrap.adapters._common import check_ids, dot_scores
from sgdl_wrap.adapters.graph import SparseMatrix, sparse_matmul
from sgdl_wrap.data.interactions import Interactions
from sgdl_wrap.phase2.features import Factor, LinearFactor, RowFactor

__all__ = ["CDAE"]


class CDAE(nn.Module):
    """CDAE with the SGDL paper's settings (hidden 100, corruption dropout 0.5).

    For user ``u`` with training interaction vector ``x_u`` (``[n_items]``, 1 on the user's
    items in ``train``)::

        h_u = sigmoid(W x~_u + V_u + b)        logit(u, i) = W'_i . h_u + b'_i

    where ``x~_u`` is ``x_u`` with each 1 dropped with probability ``dropout`` and the rest
    scaled by ``1 / (1 - dropout)`` (training mode only; eval is deterministic) and ``V_u``
    is the user node. A call corrupts each distinct user of the batch once, so a user's
    interactions in one batch share their input. ``x_u`` is never materialised: ``W x~_u``
    is a sparse product over the batch users' interactions, not ``B x n_items``; its
    data-dependent shapes keep ``score`` out of ``torch.func.vmap``.

    Args:
        train: training interactions; each user's item set is the autoencoder's input.
        hidden: hidden size ``H``.
        dropout: input corruption probability.

    Parameters: ``encoder`` ``[n_items, H]`` (row ``i`` is ``W``'s column for item ``i``),
    ``user_node`` ``[n_users, H]``, ``encoder_bias`` ``[H]``, ``decoder`` ``[n_items, H]``,
    ``decoder_bias`` ``[n_items]``; matrices Xavier-uniform, biases zero, drawn from torch's
    global RNG.
    """

    indptr: Tensor
    user_items: Tensor

    def __init__(self, train: Interactions, hidden: int = 100, dropout: float = 0.5) -> None:
        super().__init__()
        if hidden <= 0:
            raise ValueError(f"hidden must be positive, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_users = train.n_users
        self.n_items = train.n_items
        self.dropout = dropout
        self.encoder = nn.Parameter(torch.empty(train.n_items, hidden))
        self.user_node = nn.Parameter(torch.empty(train.n_users, hidden))
        self.encoder_bias = nn.Parameter(torch.zeros(hidden))
        self.decoder = nn.Parameter(torch.empty(train.n_items, hidden))
        self.decoder_bias = nn.Parameter(torch.zeros(train.n_items))
        for matrix in (self.encoder, self.user_node, self.decoder):
            nn.init.xavier_uniform_(matrix)
        csr = train.csr
        self.register_buffer("indptr", torch.from_numpy(csr.indptr.copy()), persistent=False)
        self.register_buffer("user_items", torch.from_numpy(csr.items.copy()), persistent=False)

    def hidden(self, users: Tensor, factors: dict[str, Factor] | None = None) -> Tensor:
        """Hidden codes ``h_u`` ``[B, H]`` of ``users`` ``[B]`` (corrupted input in training).
        With ``factors`` given, records the encoder side's gradient factors in it."""
        # A batch of interactions repeats users: encode each distinct user once.
        distinct, inverse = torch.unique(users, return_inverse=True)
        starts = self.indptr[distinct]
        counts = self.indptr[distinct + 1] - starts
        # Flatten the users' item lists: entry j belongs to distinct[position[j]].
        position = torch.repeat_interleave(counts)
        first_entry = torch.cumsum(counts, 0) - counts
        entry = torch.arange(position.numel(), device=users.device) - first_entry[position]
        items = self.user_items[starts[position] + entry]
        values = torch.ones(items.shape, dtype=self.encoder.dtype, device=items.device)
        if self.training and self.dropout > 0:
            values = values * (torch.rand_like(values) >= self.dropout) / (1.0 - self.dropout)
        inputs = SparseMatrix.from_coo(position, items, values, (distinct.numel(), self.n_items))
        encoded = sparse_matmul(inputs, self.encoder)[inverse]
        user_rows = F.embedding(users, self.user_node)
        pre_activation = encoded + user_rows + self.encoder_bias
        if factors is not None:
            # The encoder's per-sample input x~_u, as its values over the user's items in
            # CSR order: the same coordinates at every call, and only B x max-degree.
            width = int(counts.max()) if counts.numel() else 0
            padded = values.new_zeros(distinct.numel(), width).index_put((position, entry), values)
            factors["encoder"] = LinearFactor(pre_activation, padded[inverse])
            factors["encoder_bias"] = LinearFactor(pre_activation)
            factors["user_node"] = RowFactor(user_rows)
        return torch.sigmoid(pre_activation)

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits: ``users`` ``[B]``, ``items`` ``[B]`` or ``[B, C]`` -> ``[B]`` or ``[B, C]``."""
        check_ids(users, items, self.n_users, self.n_items)
        decoder_rows = F.embedding(items, self.decoder)
        return dot_scores(self.hidden(users), decoder_rows) + self.decoder_bias[items]

    def per_sample_factors(self, users: Tensor, items: Tensor) -> tuple[Tensor, dict[str, Factor]]:
        """Scores as :meth:`score` plus exact gradient factors of every parameter for SGDL's
        scheduler features (:mod:`sgdl_wrap.phase2.features`)."""
        check_ids(users, items, self.n_users, self.n_items)
        factors: dict[str, Factor] = {}
        codes = self.hidden(users, factors)
        decoder_rows = F.embedding(items, self.decoder)
        bias_rows = self.decoder_bias[items].unsqueeze(-1)
        factors["decoder"] = RowFactor(decoder_rows, items)
        factors["decoder_bias"] = RowFactor(bias_rows, items)
        return dot_scores(codes, decoder_rows) + bias_rows.squeeze(-1), factors

    def score_all(self, users: Tensor) -> Tensor:
        """Logits of every item: ``users`` ``[B]`` -> ``[B, n_items]``."""
        check_ids(users, None, self.n_users, self.n_items)
        return self.hidden(users) @ self.decoder.T + self.decoder_bias

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Same as :meth:`score` (so ``torch.func.functional_call`` scores pairs)."""
        return self.score(users, items)
