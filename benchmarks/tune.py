"""``python -m sgdl_wrap.benchmarks tune``: choose one setting of a method on the validation set.

Each value of the grid is a cached run per seed
(:func:`sgdl_wrap.benchmarks.running.runner.cached_runs`); the value with the best mean validation
score of the model-selection metric (recall at the first K, as early stopping uses) wins. Test
metrics are recorded but never used to choose.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sgdl_wrap.benchmarks.reports.reporting import markdown_table, write_result
from sgdl_wrap.benchmarks.running.data import load
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.runner import cached_runs

__all__ = ["add_parser", "choose", "tune"]


def choose(values: Sequence[Any], scores: Sequence[Sequence[float]]) -> Any:
    """The value whose seeds' mean score is highest (the first one on a tie).

    Args:
        values: ``[V]`` candidate setting values.
        scores: ``[V][S]`` validation scores, one list of seeds per value.
    """
    if len(values) != len(scores) or not values:
        raise ValueError(f"need one list of scores per value, got {len(values)} values and "
                         f"{len(scores)} score lists")
    means = [float(np.mean(s)) for s in scores]
    return values[int(np.argmax(means))]


def tune(args: argparse.Namespace) -> None:
    """Entry point of the ``tune`` command."""
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load(args.dataset, args.data_dir)
    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    configs = {value: [RunConfig(dataset=args.dataset, model=args.model, method=args.method,
                                 seed=seed, epochs=args.epochs, patience=args.patience,
                                 device=args.device, extra={args.setting: value})
                       for seed in args.seeds] for value in args.values}
    metric = f"recall@{configs[args.values[0]][0].ks[0]}"
    results = iter(cached_runs(data, [c for value in args.values for c in configs[value]],
                               args.cache_dir))
    for value in args.values:
        runs = [next(results) for _ in configs[value]]
        records.append({
            "value": value,
            "valid": [r["valid"][metric] for r in runs],
            "test_recall@20": [r["test"]["recall@20"] for r in runs],
            "best_epoch": [r["best_epoch"] for r in runs],
            "wall_time_s": sum(r["wall_time_s"] for r in runs),
        })
    best = choose(args.values, [r["valid"] for r in records])
    rows = [[f"{r['value']}" + (" (chosen)" if r["value"] == best else ""),
             f"{np.mean(r['valid']):.4f}", f"{np.mean(r['test_recall@20']):.4f}",
             " / ".join(map(str, r["best_epoch"]))] for r in records]
    compute = sum(r["wall_time_s"] for r in records)
    text = markdown_table([args.setting, f"valid {metric}", "test recall@20", "best epoch"],
                          rows) + (
        f"\nChosen by mean validation {metric} over seeds {list(args.seeds)}; epoch cap "
        f"{args.epochs}, patience {args.patience}. Training compute: {compute / 3600:.2f} h.\n"
    )
    name = f"tune_{args.dataset}_{args.model}_{args.method}_{args.setting}"
    write_result(name, {"dataset": args.dataset, "model": args.model, "method": args.method,
                        "setting": args.setting, "metric": metric, "chosen": best,
                        "epochs": args.epochs, "patience": args.patience, "grid": records,
                        "compute_s": compute},
                 text, seeds=args.seeds, wall_time_s=time.perf_counter() - start,
                 device=args.device, title=f"{args.method} {args.setting} for {args.model} on "
                                           f"{args.dataset}", results_dir=args.results_dir)
    print(text)


def _value(text: str) -> Any:
    """A JSON value (``5``, ``0.1``, ``true``) or, failing that, the bare string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def add_parser(commands: Any, default_data_dir: Path | None, results_dir: Path,
               cache_dir: Path, models: Sequence[str], methods: Sequence[str],
               datasets: Sequence[str]) -> None:
    """The ``tune`` sub-command."""
    parser = commands.add_parser("tune", help="pick a method setting on the validation set")
    parser.add_argument("--dataset", default="ml100k", choices=datasets)
    parser.add_argument("--model", required=True, choices=sorted(models))
    parser.add_argument("--method", required=True, choices=sorted(methods))
    parser.add_argument("--setting", required=True, help="the setting to tune, e.g. lambda1")
    parser.add_argument("--values", required=True, nargs="+", type=_value)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=400, help="maximum epochs per run")
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir)
    parser.add_argument("--results-dir", type=Path, default=results_dir)
    parser.add_argument("--cache-dir", type=Path, default=cache_dir)
    parser.set_defaults(handler=tune)
