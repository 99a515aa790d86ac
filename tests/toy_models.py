"""Small models defined outside adapters/, as a user would write them."""

import torch


class TableModel(torch.nn.Module):
    """Scores from a fixed ``[n_users, n_items]`` table."""

    def __init__(self, table):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))
        self.n_users, self.n_items = self.table.shape

    def score(self, users, items):
        return self.table[users.unsqueeze(-1) if items.dim() == 2 else users, items]

    def score_all(self, users):
        return self.table[users]


class TinyMF(torch.nn.Module):
    """Plain matrix factorisation."""

    def __init__(self, n_users, n_items, dim=8):
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.user = torch.nn.Embedding(n_users, dim)
        self.item = torch.nn.Embedding(n_items, dim)

    def forward(self, users, items):
        return self.score(users, items)

    def score(self, users, items):
        u = self.user(users)
        if items.dim() == 2:
            u = u.unsqueeze(1)
        return (u * self.item(items)).sum(-1)

    def score_all(self, users):
        return self.user(users) @ self.item.weight.T


class FactoredMF(TinyMF):
    """TinyMF with the optional ``per_sample_factors`` hook."""

    def per_sample_factors(self, users, items):
        from sgdl_wrap.phase2.features import RowFactor

        u, i = self.user(users), self.item(items)
        scores = (u.unsqueeze(1) * i).sum(-1) if items.dim() == 2 else (u * i).sum(-1)
        return scores, {"user.weight": RowFactor(u, users), "item.weight": RowFactor(i, items)}
