"""What Phase II does to the training loss: Normal and SGDL side by side, epoch by epoch.

``python -m sgdl_wrap.benchmarks.studies.phase2_dynamics --dataset ml100k --model neumf lightgcn``

For each model, one Normal and one SGDL run from the same seed; SGDL switches to Phase II
after ``--switch-epoch`` (0-based; memorization history 2) and trains Phase I at the full
learning rate, so the two runs differ only from the switch on. After every epoch both are
measured the same way: the mean *unweighted* per-sample loss over all training rows (fresh
negatives, eval mode; the memorization pass), validation Recall@20, and for SGDL the
weighted objective it minimised and the mean learned weights of clean and noisy rows (when
the data flags them). Writes
``benchmarks/results/phase2_dynamics_<dataset>.{json,md}``.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sgdl_wrap.benchmarks.reports.reporting import markdown_table, results_folder, write_result
from sgdl_wrap.benchmarks.running.data import default_data_dir, load
from sgdl_wrap.benchmarks.running.methods import METHODS
from sgdl_wrap.benchmarks.running.models import MODELS
from sgdl_wrap.benchmarks.running.run_config import RunConfig, parse_setting
from sgdl_wrap.benchmarks.running.trainers import SGDLTrainer, Trainer
from sgdl_wrap.data.datasets import Dataset
from sgdl_wrap.data.sampling import UniformNegativeSampler
from sgdl_wrap.metrics import evaluate
from sgdl_wrap.phase1.memorization import memorization_pass


def _unweighted_loss(
    trainer: Trainer, data: Dataset, sampler: UniformNegativeSampler, seed: int
) -> float:
    """Mean per-sample loss over every training row, with negatives drawn from ``seed``."""
    result = memorization_pass(
        trainer.recommender, trainer.loss, data.train, sampler, np.random.default_rng(seed),
        device=trainer.device,
    )
    return float(result.losses.mean())


def trace(data: Dataset, model: str, method: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One run of ``method`` (``"normal"`` or ``"sgdl"``); a row of measurements per epoch."""
    # A 2-epoch history, so that an early switch finds a memorized set.
    extra = ({"switch_epoch": args.switch_epoch, "phase1_lr_factor": 1.0, "history": 2,
              **dict(args.settings)} if method == "sgdl" else {})
    config = RunConfig(dataset=args.dataset, model=model, method=method, seed=args.seed,
                       extra=extra)
    trainer = METHODS[method](data, config)
    sampler = UniformNegativeSampler(data.train)
    rows = []
    for epoch in tqdm(range(args.epochs), desc=f"{model} {method}", leave=False, mininterval=5):
        objective = trainer.train_epoch(epoch)
        valid = evaluate(trainer.recommender, data.valid, exclude=[data.train], ks=(20,))
        row: dict[str, Any] = {
            "epoch": epoch,
            "objective": objective,
            "unweighted_loss": _unweighted_loss(trainer, data, sampler, args.seed + 1000 + epoch),
            "valid_recall@20": valid["recall@20"],
        }
        if isinstance(trainer, SGDLTrainer):
            report = trainer.sgdl.reports[-1]
            row.update(phase=report.phase, weight_clean=report.weight_clean,
                       weight_noisy=report.weight_noisy)
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml100k")
    parser.add_argument("--model", nargs="+", choices=sorted(MODELS), default=["neumf"])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--switch-epoch", type=int, default=1,
                        help="SGDL starts Phase II after this epoch (0-based)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="settings", type=parse_setting, action="append",
                        default=[], metavar="KEY=VALUE", help="an SGDLConfig field for SGDL")
    parser.add_argument("--results-dir", type=Path, default=results_folder("studies"))
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    data = load(args.dataset, args.data_dir)
    start = time.perf_counter()
    traces = {m: {method: trace(data, m, method, args) for method in ("normal", "sgdl")}
              for m in args.model}
    header = ["model", "epoch", "SGDL phase", "Normal loss", "SGDL loss (unweighted)",
              "SGDL objective (weighted)", "Normal valid R@20", "SGDL valid R@20"]
    rows = [
        [m, n["epoch"], s["phase"], f"{n['unweighted_loss']:.4f}", f"{s['unweighted_loss']:.4f}",
         f"{s['objective']:.4f}", f"{n['valid_recall@20']:.4f}", f"{s['valid_recall@20']:.4f}"]
        for m, both in traces.items() for n, s in zip(both["normal"], both["sgdl"])
    ]
    path = write_result(
        f"phase2_dynamics_{args.dataset}" + (f"_{args.tag}" if args.tag else ""),
        {"dataset": args.dataset, "switch_epoch": args.switch_epoch, "threads": args.threads,
         "sgdl_settings": dict(args.settings), "models": traces},
        markdown_table(header, rows)
        + "\nLosses are means over all training rows (unweighted, fresh negatives, eval mode); "
          "the SGDL objective is the weighted loss its steps minimised.\n",
        seeds=[args.seed], wall_time_s=time.perf_counter() - start,
        title=f"Phase II against Normal training, epoch by epoch, on {args.dataset}",
        results_dir=args.results_dir,
    )
    print(markdown_table(header, rows))
    return path


if __name__ == "__main__":
    main()
