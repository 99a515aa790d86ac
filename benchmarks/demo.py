"""``sgdl-wrap demo``: Normal and SGDL on planted-noise synthetic data, offline, in about a
minute on two CPU cores.

The data (:func:`sgdl_wrap.data.make_synthetic`) flags every noisy interaction, so the demo
can show what the paper measures: how clean the memorized set is against the data, the mean
learned weight of clean and noisy rows in Phase II, and test Recall@20 of both methods. It
prints a table and writes ``demo.{json,md}`` and ``demo_weights.png`` (the weights of clean
and noisy rows over Phase II) to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sgdl_wrap.benchmarks.reports.reporting import markdown_table, write_result
from sgdl_wrap.benchmarks.running.models import MODELS
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.runner import run
from sgdl_wrap.data import Dataset, make_synthetic

__all__ = ["add_parser", "demo"]


def _data(seed: int) -> Dataset:
    return make_synthetic(n_users=300, n_items=400, interactions_per_user=30, noise_rate=0.2,
                          popularity_skew=0.5, seed=seed)


def _weights_figure(epochs: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phase_two = [e for e in epochs if e["weight_clean"] is not None]
    figure, axes = plt.subplots(figsize=(5, 3.2))
    for key, label in (("weight_clean", "clean rows"), ("weight_noisy", "noisy rows")):
        axes.plot([e["epoch"] + 1 for e in phase_two], [e[key] for e in phase_two], marker="o",
                  label=label)
    axes.set_xlabel("epoch (Phase II)")
    axes.set_ylabel("mean learned weight")
    axes.set_title("SGDL's weights on planted noise")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def add_parser(commands: Any) -> None:
    """The ``demo`` sub-command."""
    parser = commands.add_parser("demo", help="Normal and SGDL on planted noise, offline",
                                 description=__doc__)
    parser.add_argument("--model", choices=sorted(MODELS), default="lightgcn")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("sgdl-wrap-demo"),
                        help="folder for the table and the figure")
    parser.set_defaults(handler=demo)


def demo(args: argparse.Namespace) -> None:
    """Train, tabulate and draw (see the module docstring)."""
    start = time.perf_counter()
    data = _data(args.seed)
    runs = {
        method: run(data, RunConfig(dataset="synthetic", model=args.model, method=method,
                                    seed=args.seed, epochs=args.epochs, patience=args.epochs))
        for method in ("normal", "sgdl")
    }
    sgdl = runs["sgdl"]
    switch = sgdl["switch_epoch"]
    epochs = sgdl["epochs"]
    at_switch = epochs[switch] if switch is not None else None
    last = epochs[-1]
    assert data.train.noisy is not None  # synthetic data flags its noise
    clean_share = 1 - float(data.train.noisy.mean())
    rows = [
        ["Normal", f"{runs['normal']['test']['recall@20']:.4f}", "-", "-", "-"],
        ["SGDL", f"{sgdl['test']['recall@20']:.4f}",
         "-" if at_switch is None else f"{at_switch['memorization_precision']:.3f}",
         "-" if last["weight_clean"] is None else f"{last['weight_clean']:.3f}",
         "-" if last["weight_noisy"] is None else f"{last['weight_noisy']:.3f}"],
    ]
    table = markdown_table(
        ["method", "test R@20", "memorized set clean (data: " f"{clean_share:.3f})",
         "weight, clean rows", "weight, noisy rows"], rows)
    note = (f"\nSGDL switched to Phase II after epoch {switch + 1}.\n" if switch is not None
            else "\nSGDL did not reach Phase II: raise --epochs.\n")
    figure = args.out / "demo_weights.png"
    args.out.mkdir(parents=True, exist_ok=True)
    if switch is not None:
        _weights_figure(epochs, figure)
        note += f"\n![weights]({figure.name})\n"
    write_result("demo", {"model": args.model, "runs": runs}, table + note, seeds=[args.seed],
                 wall_time_s=time.perf_counter() - start,
                 title=f"SGDL demo: {args.model} on planted-noise synthetic data",
                 results_dir=args.out)
    print(table + note)
    print(f"written to {args.out}/")
