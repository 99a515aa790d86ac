"""Phase II's cost for models written with plain modules and no factor hook.

``python -m sgdl_wrap.benchmarks.studies.custom_models --dataset ml100k --threads 2``

Two models as a user would write them, an MF of two ``nn.Embedding`` tables and a two-tower
MLP (embeddings, then ``nn.Linear`` layers per (user, item) pair), are trained on the
dataset with SGDL switched to Phase II after one epoch. Per model and per-sample-gradient
strategy (``"modules"``: factors recorded from the modules; ``"loop"``: one backward per
sample; and, for MF, ``"factors"`` from a hand-written ``per_sample_factors`` hook) the
script times ``--batches`` Phase II batches and as many plain training batches of the same
model (BPR, batch 128, after ``--warmup`` untimed batches of each). Writes
``benchmarks/results/custom_models_<dataset>.{json,md}``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sgdl_wrap import Batch, SGDLConfig, SGDLWrapper
from sgdl_wrap.adapters import BPRLoss
from sgdl_wrap.benchmarks.reports.reporting import markdown_table, results_folder, write_result
from sgdl_wrap.benchmarks.running.data import default_data_dir, load
from sgdl_wrap.benchmarks.studies.speed import endless, timed_batches
from sgdl_wrap.phase2.features import Factor, RowFactor

__all__ = ["HookedMF", "PlainMF", "TowerMLP", "main"]


class PlainMF(nn.Module):
    """Matrix factorisation: ``<p_u, q_i>`` from two embedding tables of width ``dim``."""

    def __init__(self, n_users: int, n_items: int, dim: int = 32) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """``users`` ``[B]``, ``items`` ``[B]`` or ``[B, C]`` -> logits of ``items``' shape."""
        rows = self.user(users)
        return ((rows.unsqueeze(1) if items.dim() == 2 else rows) * self.item(items)).sum(-1)

    def score_all(self, users: Tensor) -> Tensor:
        return self.user(users) @ self.item.weight.T

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        return self.score(users, items)


class HookedMF(PlainMF):
    """:class:`PlainMF` with a hand-written ``per_sample_factors`` hook."""

    def per_sample_factors(self, users: Tensor, items: Tensor) -> tuple[Tensor, dict[str, Factor]]:
        user_rows, item_rows = self.user(users), self.item(items)
        expanded = user_rows.unsqueeze(1) if items.dim() == 2 else user_rows
        return (expanded * item_rows).sum(-1), {
            "user.weight": RowFactor(user_rows, users),
            "item.weight": RowFactor(item_rows, items),
        }


class TowerMLP(nn.Module):
    """User and item embeddings concatenated per (user, item) pair, then
    ``Linear(2 dim -> hidden)``, ReLU and ``Linear(hidden -> 1)`` without a bias."""

    def __init__(self, n_users: int, n_items: int, dim: int = 32, hidden: int = 32) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.hidden = nn.Linear(2 * dim, hidden)
        self.out = nn.Linear(hidden, 1, bias=False)

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """``users`` ``[B]``, ``items`` ``[B]`` or ``[B, C]`` -> logits of ``items``' shape."""
        flat = items.dim() == 1
        item_rows = self.item(items.unsqueeze(1) if flat else items)
        user_rows = self.user(users).unsqueeze(1).expand_as(item_rows)
        pairs = torch.cat([user_rows, item_rows], dim=-1)
        logits = self.out(torch.relu(self.hidden(pairs))).squeeze(-1)
        return logits.squeeze(1) if flat else logits

    def score_all(self, users: Tensor) -> Tensor:
        items = torch.arange(self.n_items, device=users.device).expand(len(users), -1)
        return self.score(users, items)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        return self.score(users, items)


# Per model, the class trained with each strategy (same parameters, so the same seed
# draws the same initial model; only HookedMF has the hook "factors" needs).
CASES: dict[str, dict[str, Callable[[int, int], PlainMF | TowerMLP]]] = {
    "mf": {"factors": HookedMF, "modules": PlainMF, "loop": PlainMF},
    "tower-mlp": {"modules": TowerMLP, "loop": TowerMLP},
}


def measure(data: Any, build: Callable[[int, int], PlainMF | TowerMLP], strategy: str,
            args: argparse.Namespace) -> dict[str, Any]:
    """Phase II and plain batches of one model trained with one strategy."""
    torch.manual_seed(args.seed)
    model = build(data.train.n_users, data.train.n_items)
    loss = BPRLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sgdl = SGDLWrapper(model, loss, train=data.train, config=SGDLConfig.from_dict({
        "switch_epoch": 0, "history": 1, "seed": args.seed, "per_sample_gradients": strategy}))
    if sgdl.per_sample_strategy != strategy:
        raise RuntimeError(f"asked for {strategy!r}, the wrapper uses {sgdl.per_sample_strategy!r}")
    for batch in sgdl.batches(args.batch_size):
        sgdl.step(batch, optimizer)
    sgdl.end_epoch()
    count = args.loop_batches if strategy == "loop" else args.batches
    batches = list(itertools.islice(endless(lambda: sgdl.batches(args.batch_size)),
                                    args.warmup + count))

    def plain_step(batch: Batch) -> None:
        objective = loss(model.score(batch.users, batch.candidates)).mean()
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()

    timed_batches(lambda b: sgdl.step(b, optimizer), batches[:args.warmup], "warm-up")
    phase2 = timed_batches(lambda b: sgdl.step(b, optimizer), batches[args.warmup:],
                           f"{strategy} phase II", count)
    timed_batches(plain_step, batches[:args.warmup], "warm-up")
    plain = timed_batches(plain_step, batches[args.warmup:], "plain", count)
    return {
        "batches_timed": count,
        "phase2_ms_per_batch_median": 1000 * float(np.median(phase2)),
        "plain_ms_per_batch_median": 1000 * float(np.median(plain)),
    }


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml100k")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=200, help="timed batches per strategy")
    parser.add_argument("--loop-batches", type=int, default=10,
                        help="timed batches of the slow loop")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", type=Path, default=results_folder("studies"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    data = load(args.dataset, args.data_dir)
    start = time.perf_counter()
    measured = {
        name: {strategy: measure(data, build, strategy, args)
               for strategy, build in builds.items()}
        for name, builds in CASES.items()
    }
    rows = [
        [name, strategy, f"{r['plain_ms_per_batch_median']:.2f}",
         f"{r['phase2_ms_per_batch_median']:.2f}",
         f"{r['phase2_ms_per_batch_median'] / r['plain_ms_per_batch_median']:.1f}",
         str(r["batches_timed"])]
        for name, strategies in measured.items() for strategy, r in strategies.items()
    ]
    header = ["model", "per-sample gradients", "plain ms/batch", "Phase II ms/batch",
              "Phase II / plain", "batches timed"]
    path = write_result(
        f"custom_models_{args.dataset}",
        {"dataset": args.dataset, "threads": args.threads, "batch_size": args.batch_size,
         "models": measured},
        markdown_table(header, rows),
        seeds=[args.seed], wall_time_s=time.perf_counter() - start,
        title=f"Phase II of models without a factor hook on {args.dataset} (medians)",
        results_dir=args.results_dir,
    )
    print(markdown_table(header, rows))
    return path


if __name__ == "__main__":
    main()
