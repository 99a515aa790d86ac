"""NeuMF (He et al., WWW 2017): generalized matrix factorisation fused with an MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sgdl_wrap.adapters._common import check_ids
from sgdl_wrap.phase2.features import Factor, LinearFactor, RowFactor

__all__ = ["NeuMF"]

# score_all works on chunks of users so that the first MLP layer's [b, n_items, width]
# activations stay near this many elements (64 MiB in float32).
_SCORE_ALL_ELEMENTS = 1 << 24


class NeuMF(nn.Module):
    """NeuMF with the SGDL paper's settings (predictive factors 32, 3 MLP layers).

    GMF branch: ``p_u * q_i`` with ``factors``-sized embeddings. MLP branch (NCF layout): user
    and item embeddings of size ``m = factors * 2**(mlp_layers - 1)`` each, concatenated to
    ``2m`` and passed through ``mlp_layers`` ReLU layers that halve the width down to
    ``factors``. The logit is a linear layer on the concatenation of both branches.

    Args:
        n_users: number of users.
        n_items: number of items.
        factors: predictive factors (GMF embedding size and MLP output width).
        mlp_layers: number of MLP layers (>= 1).
        dropout: dropout before every MLP layer, training mode only.

    Parameters: ``gmf_user`` ``[n_users, factors]``, ``gmf_item`` ``[n_items, factors]``,
    ``mlp_user`` ``[n_users, m]``, ``mlp_item`` ``[n_items, m]``, ``mlp_input``
    (``2m -> m``), ``tower[k]`` (``m / 2**k -> m / 2**(k+1)``, ``mlp_layers - 1`` of them)
    and ``predict`` (``2 * factors -> 1``); weights Xavier-uniform, biases zero, drawn from
    torch's global RNG.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 32,
        mlp_layers: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if factors <= 0 or mlp_layers < 1:
            raise ValueError(
                f"need factors > 0 and mlp_layers >= 1, got {factors} and {mlp_layers}"
            )
        self.n_users = n_users
        self.n_items = n_items
        self.mlp_dim = factors * 2 ** (mlp_layers - 1)
        self.gmf_user = nn.Embedding(n_users, factors)
        self.gmf_item = nn.Embedding(n_items, factors)
        self.mlp_user = nn.Embedding(n_users, self.mlp_dim)
        self.mlp_item = nn.Embedding(n_items, self.mlp_dim)
        self.mlp_input = nn.Linear(2 * self.mlp_dim, self.mlp_dim)
        widths = [self.mlp_dim // 2**k for k in range(mlp_layers - 1)]
        self.tower = nn.ModuleList(nn.Linear(width, width // 2) for width in widths)
        self.predict = nn.Linear(2 * factors, 1)
        self.dropout = nn.Dropout(dropout)
        for module in self.modules():
            if isinstance(module, (nn.Embedding, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def _logits(
        self, users: Tensor, items: Tensor, factors: dict[str, Factor] | None = None
    ) -> Tensor:
        """Logits for ``users`` ``[B, 1]`` (or ``[B, C]``) against ``items`` ``[B, C]`` (or
        ``[1, C]``), broadcasting like ``users + items`` -> ``[B, C]``. With ``factors``
        given, records every parameter's gradient factor in it (``[B, C]`` samples)."""
        gmf_user, gmf_item = self.gmf_user(users), self.gmf_item(items)
        user_part, item_part = self.mlp_user(users), self.mlp_item(items)
        shape = torch.broadcast_shapes(users.shape, items.shape)
        if self.training and self.dropout.p > 0:
            # Each (user, item) pair needs its own dropout mask on the user half.
            user_part = user_part.expand(*shape, -1)
        user_input, item_input = self.dropout(user_part), self.dropout(item_part)
        # The first layer acts on concat(user, item); splitting its weight lets the user
        # half be computed once per user instead of once per candidate.
        user_weight, item_weight = self.mlp_input.weight.split(self.mlp_dim, dim=1)
        hidden = F.linear(user_input, user_weight) + F.linear(
            item_input, item_weight, self.mlp_input.bias
        )
        if factors is not None:
            factors["gmf_user.weight"] = RowFactor(gmf_user, users)
            factors["gmf_item.weight"] = RowFactor(gmf_item, items)
            factors["mlp_user.weight"] = RowFactor(user_part, users)
            factors["mlp_item.weight"] = RowFactor(item_part, items)
            joint_input = torch.cat([user_input.expand(*shape, -1), item_input], dim=-1)
            factors["mlp_input.weight"] = LinearFactor(hidden, joint_input)
            factors["mlp_input.bias"] = LinearFactor(hidden)
        hidden = F.relu(hidden)
        for k, layer in enumerate(self.tower):
            layer_input = self.dropout(hidden)
            hidden = layer(layer_input)
            if factors is not None:
                factors[f"tower.{k}.weight"] = LinearFactor(hidden, layer_input)
                factors[f"tower.{k}.bias"] = LinearFactor(hidden)
            hidden = F.relu(hidden)
        features = torch.cat([gmf_user * gmf_item, hidden], dim=-1)
        logits = self.predict(features)
        if factors is not None:
            factors["predict.weight"] = LinearFactor(logits, features)
            factors["predict.bias"] = LinearFactor(logits)
        return logits.squeeze(-1)

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits: ``users`` ``[B]``, ``items`` ``[B]`` or ``[B, C]`` -> ``[B]`` or ``[B, C]``."""
        check_ids(users, items, self.n_users, self.n_items)
        if items.dim() == 1:
            return self._logits(users.unsqueeze(1), items.unsqueeze(1)).squeeze(1)
        return self._logits(users.unsqueeze(1), items)

    def per_sample_factors(self, users: Tensor, items: Tensor) -> tuple[Tensor, dict[str, Factor]]:
        """Scores as :meth:`score` plus exact gradient factors of every parameter for SGDL's
        scheduler features: gathered rows for the embeddings, ghost factors for the linear
        layers (:mod:`sgdl_wrap.phase2.features`)."""
        check_ids(users, items, self.n_users, self.n_items)
        factors: dict[str, Factor] = {}
        flat = items.dim() == 1
        scores = self._logits(users.unsqueeze(1), items.unsqueeze(1) if flat else items, factors)
        return (scores.squeeze(1) if flat else scores), factors

    def score_all(self, users: Tensor) -> Tensor:
        """Logits of every item: ``users`` ``[B]`` -> ``[B, n_items]``."""
        check_ids(users, None, self.n_users, self.n_items)
        all_items = torch.arange(self.n_items, device=users.device).unsqueeze(0)
        chunk = max(1, _SCORE_ALL_ELEMENTS // (self.n_items * self.mlp_dim))
        return torch.cat(
            [self._logits(part.unsqueeze(1), all_items) for part in users.split(chunk)]
        )

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Same as :meth:`score` (so ``torch.func.functional_call`` scores pairs)."""
        return self.score(users, items)
