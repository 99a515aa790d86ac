"""How closely the adapters' gradient-factor cosines match the exact per-sample loop.

``python -m sgdl_wrap.benchmarks.studies.per_sample_agreement --model lightgcn ngcf neumf cdae``

For each model, after ``--warmup-epochs`` of plain training on ML-100K: ``--batches``
batches of ``--batch-size`` training samples. For each, ``theta_hat`` is a plain SGD step
(learning rate ``--lookahead-lr``) on the batch's mean loss, as in SGDL's feature look-ahead,
and the scheduler's features ``cos(grad L_m(theta_hat), grad L_m(theta))`` are computed per
sample and parameter tensor twice: from ``per_sample_factors`` and by the exact loop over
samples w.r.t. the parameters. NeuMF and CDAE factors are exact; LightGCN and NGCF factors
are gradients w.r.t. the propagated rows (an approximation). Reported per factor: the
mean absolute difference, the Pearson correlation, and the Spearman rank correlation of
each batch's samples (the scheduler ranks samples). Writes
``benchmarks/results/per_sample_agreement_<dataset>.{json,md}``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from sgdl_wrap.benchmarks.reports.reporting import markdown_table, results_folder, write_result
from sgdl_wrap.benchmarks.running.data import default_data_dir, load
from sgdl_wrap.benchmarks.running.models import MODELS
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.trainers import Trainer
from sgdl_wrap.losses import check_per_sample
from sgdl_wrap.phase2.functional import lookahead, trainable_parameters
from sgdl_wrap.phase2.gradient_check import gradient_factor_agreement


def measure(
    data: Any, model_name: str, lookahead_lr: float, args: argparse.Namespace
) -> dict[str, Any]:
    config = RunConfig(dataset=args.dataset, model=model_name, method="normal", seed=args.seed,
                       batch_size=args.batch_size)
    trainer = Trainer(data, config)
    for epoch in range(args.warmup_epochs):
        trainer.train_epoch(epoch)
    model: Any = trainer.model
    loss = trainer.loss
    model.eval()  # dropout would make the look-ahead see other masks than the checker
    params = trainable_parameters(model)
    factor_columns: list[np.ndarray] = []
    loop_columns: list[np.ndarray] = []
    agreement = None
    for batch in itertools.islice(trainer.batches(), args.batches):
        losses = check_per_sample(loss(model.score(batch.users, batch.candidates)), len(batch))
        point = lookahead(losses.mean(), params, lookahead_lr, create_graph=False)
        point = {n: p.detach().requires_grad_() for n, p in point.items()}
        agreement = gradient_factor_agreement(
            model, loss, batch.users, batch.candidates, point=point
        )
        factor_columns.append(agreement.factor.numpy())
        loop_columns.append(agreement.loop.numpy())
    assert agreement is not None, "--batches must be positive"
    names, exact = agreement.names, agreement.exact
    factor_all, loop_all = np.concatenate(factor_columns), np.concatenate(loop_columns)
    per_factor = {}
    for k, name in enumerate(names):
        f, g = factor_all[:, k], loop_all[:, k]
        spearman = [
            spearmanr(a[:, k], b[:, k]).statistic for a, b in zip(factor_columns, loop_columns)
        ]
        per_factor[name] = {
            "exact": exact[name],
            "mean_abs_difference": float(np.abs(f - g).mean()),
            "max_abs_difference": float(np.abs(f - g).max()),
            "pearson": float(pearsonr(f, g).statistic) if f.std() > 0 and g.std() > 0 else None,
            "spearman_within_batch_mean": float(np.nanmean(spearman)),
            "loop_mean": float(g.mean()),
            "factor_mean": float(f.mean()),
        }
    return {
        "samples": int(factor_all.shape[0]),
        "warmup_epochs": args.warmup_epochs,
        "uncovered_parameters": agreement.uncovered,
        "factors": per_factor,
    }


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml100k")
    parser.add_argument("--model", nargs="+", choices=sorted(MODELS), default=["lightgcn"])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--lookahead-lr", type=float, nargs="+", default=[1e-3, 1.0, 100.0],
                        help="SGD step sizes of the look-ahead (SGDL uses the model's rate)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", type=Path, default=results_folder("studies"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = load(args.dataset, args.data_dir)
    measured = {
        f"{name} lr={lr:g}": measure(data, name, lr, args)
        for name in args.model
        for lr in args.lookahead_lr
    }
    rows = []
    for label, result in measured.items():
        for factor, r in result["factors"].items():
            pearson = "" if r["pearson"] is None else f"{r['pearson']:.3f}"
            rows.append([label, factor, "exact" if r["exact"] else "propagated rows",
                         f"{r['loop_mean']:.6f}", f"{r['mean_abs_difference']:.2e}",
                         f"{r['max_abs_difference']:.2e}", pearson,
                         f"{r['spearman_within_batch_mean']:.3f}"])
        if result["uncovered_parameters"]:
            rows.append([label, ", ".join(result["uncovered_parameters"]), "no column",
                         "", "", "", "", ""])
    header = ["model, look-ahead lr", "factor", "kind", "loop cosine mean", "mean |diff|",
              "max |diff|", "Pearson", "Spearman in batch"]
    path = write_result(
        f"per_sample_agreement_{args.dataset}",
        {"dataset": args.dataset, "settings": {k: str(v) for k, v in vars(args).items()},
         "models": measured},
        markdown_table(header, rows),
        seeds=[args.seed], wall_time_s=time.perf_counter() - start,
        title=f"Gradient-factor cosines vs the exact loop on {args.dataset}",
        results_dir=args.results_dir,
    )
    print(markdown_table(header, rows))
    return path


if __name__ == "__main__":
    main()
