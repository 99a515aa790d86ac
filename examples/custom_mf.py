"""A model written from scratch (matrix factorisation) trained with SGDL on synthetic data
with planted noise: ``python examples/custom_mf.py``. SGDL needs ``score``, ``score_all`` and
the id-space sizes; your loop, your optimizer and your ``backward()`` stay yours."""

import torch
from torch import nn

from sgdl_wrap import SGDLConfig, SGDLWrapper
from sgdl_wrap.data.datasets import make_synthetic
from sgdl_wrap.metrics import evaluate


class MF(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int = 16) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.users, self.items = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
        nn.init.normal_(self.users.weight, std=0.1)
        nn.init.normal_(self.items.weight, std=0.1)

    def score(self, users, items):  # users [B], items [B] or [B, C] -> logits, items' shape
        u = self.users(users)
        return ((u if items.dim() == 1 else u.unsqueeze(1)) * self.items(items)).sum(-1)

    def score_all(self, users):  # [B] -> [B, n_items]
        return self.users(users) @ self.items.weight.T

    forward = score  # torch.func.functional_call calls forward

    # Phase II's per-sample gradient factors are recorded from the two nn.Embedding modules
    # (checked against the exact loop when the wrapper is built); nothing more to write.


def bpr(scores):  # [B, 2] (positive, negative) -> [B] per-sample losses, never reduced
    return -nn.functional.logsigmoid(scores[:, 0] - scores[:, 1])


bpr.num_negatives = 1


def main(epochs: int = 15, seed: int = 0) -> dict[str, float]:
    data = make_synthetic(300, 400, interactions_per_user=40, popularity_skew=0.0, seed=seed)
    torch.manual_seed(seed)
    model = MF(data.train.n_users, data.train.n_items)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    sgdl = SGDLWrapper(model, bpr, train=data.train, config=SGDLConfig(history=4, seed=seed))
    print("per-sample gradients:", sgdl.per_sample_strategy)
    for epoch in range(epochs):
        for batch in sgdl.batches(128):
            loss = sgdl.objective(batch, lookahead_lr=1e-2)  # or simply sgdl.step(batch, opt)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        report = sgdl.end_epoch()  # ground truth is known here, so precision is reported
        print(epoch, report.phase, f"memorized precision {report.memorization_precision:.3f}",
              f"weights clean {report.weight_clean} noisy {report.weight_noisy}")
    return evaluate(model, data.test, exclude=[data.train, data.valid])


if __name__ == "__main__":
    print(main())
