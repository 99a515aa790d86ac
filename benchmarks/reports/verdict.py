"""What SGDL's learned weights add: each model's SGDL run against runs that differ from it
in one thing, paired by seed, and the paper's claims against this repository's runs.

``sgdl-wrap verdict`` reads committed ``run_*`` results (it trains nothing) and writes
``verdict_<dataset>.{json,md}``. The controls (``benchmarks/trainers.py``):

* ``normal-matched``: SGDL's schedule (Phase I factor, switch, optimizer resets, early
  stopping) with every weight 1. SGDL minus it is what the learned weights add.
* ``sgdl-frozen``: the weighting net frozen at initialisation, the first published release
  of the authors' code. SGDL minus it is what learning the net adds.
* ``normal``: plain training. ``normal-matched`` minus it is what the schedule adds.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sgdl_wrap.benchmarks.reports.paper import paper_row
from sgdl_wrap.benchmarks.reports.reporting import (
    RESULTS_DIR,
    markdown_table,
    results_folder,
    write_result,
)
from sgdl_wrap.benchmarks.reports.significance import ALPHA, paired_difference

__all__ = ["COMPARISONS", "VERDICT_RUNS", "add_parser", "verdict"]

# Per model, the result (``run_<dataset>_<model>_<name>``) standing for each method. Every
# run follows the protocol under which the model's Normal converged (``authors-budget-400``:
# validation every 5 epochs, patience 20, 400-epoch cap; lr 5e-4, NGCF its paper rate 1e-4).
# SGDL is the configuration chosen on validation: meta_lr 5e-6 for NeuMF and CDAE
# (``tune_ml100k_{neumf,cdae}_sgdl_meta_lr``), the authors' 5e-4 for the graph models. The
# controls have no meta step, so meta_lr does not reach them.
VERDICT_RUNS: dict[str, dict[str, str]] = {
    model: {
        "sgdl": f"sgdl_authors-budget-400{'-meta-lr-5e-6' if model in ('neumf', 'cdae') else ''}",
        "normal-matched": "normal-matched_authors-budget-400",
        "sgdl-frozen": "sgdl-frozen_authors-budget-400",
        "normal": "normal_authors-budget-400",
        "sgdl-as-published": "sgdl-as-published",
    }
    for model in ("lightgcn", "neumf", "cdae", "ngcf")
}

# (treatment, baseline, what the difference measures)
COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("sgdl", "normal-matched", "learned weights vs matched schedule"),
    ("sgdl", "sgdl-frozen", "learned vs frozen weighting net"),
    ("normal-matched", "normal", "SGDL's schedule vs Normal"),
    ("sgdl", "normal", "SGDL vs Normal"),
)
METRICS = ("recall@20", "ndcg@20")


def _load(runs_dir: Path, dataset: str, model: str, name: str) -> dict[str, Any] | None:
    path = runs_dir / f"run_{dataset}_{model}_{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}" + (" †" if value < ALPHA else "")


def _mean(record: dict[str, Any], metric: str) -> str:
    summary = record["summary"][metric]
    return f"{summary['mean']:.4f} ± {summary['std']:.4f} ({len(record['runs'])})"


def verdict(runs_dir: Path, dataset: str) -> tuple[dict[str, Any], str]:
    """The verdict's record and its markdown tables, from the run results in ``runs_dir``."""
    record: dict[str, Any] = {"runs": VERDICT_RUNS, "models": {}}
    method_rows, comparison_rows, claim_rows = [], [], []
    for model, names in VERDICT_RUNS.items():
        loaded = {method: _load(runs_dir, dataset, model, name)
                  for method, name in names.items()}
        found = {method: r for method, r in loaded.items() if r is not None}
        entry: dict[str, Any] = {"missing": sorted(set(loaded) - set(found)), "comparisons": []}
        for method, result in found.items():
            method_rows.append([model, method, names[method],
                                *(_mean(result, m) for m in METRICS)])
        for treatment, baseline, meaning in COMPARISONS:
            if treatment not in found or baseline not in found:
                continue
            cells, measured = [], {}
            for metric in METRICS:
                difference = paired_difference(found[treatment]["runs"],
                                               found[baseline]["runs"], metric)
                measured[metric] = vars(difference)
                cells += [f"{difference.mean:+.4f}", _p(difference.p_better),
                          _p(difference.p_two_sided)]
            seeds = measured[METRICS[0]]["seeds"]
            comparison_rows.append([model, f"{treatment} − {baseline}", meaning,
                                    " ".join(map(str, seeds)), *cells])
            entry["comparisons"].append({"treatment": treatment, "baseline": baseline,
                                         "meaning": meaning, **measured})
        claim_rows += _claims(dataset, model, found)
        record["models"][model] = entry
    header = ["model", "difference", "what it measures", "seeds"]
    for metric in METRICS:
        short = metric.replace("recall", "R").replace("ndcg", "N")
        header += [f"Δ{short}", "p (better)", "p (differs)"]
    tables = (
        "## Learned weights against matched controls (paired by seed)\n\n"
        + markdown_table(header, comparison_rows)
        + f"\n† p < {ALPHA}. p (better): one-sided paired t-test that the first run is "
        "better; p (differs): two-sided.\n\n"
        "## Claims\n\n"
        + markdown_table(["model", "claim", "paper", "here", "holds?"], claim_rows)
        + "\n## Runs (test mean ± std over seeds, seed count)\n\n"
        + markdown_table(["model", "method", "result", *METRICS], method_rows)
    )
    missing = {m: e["missing"] for m, e in record["models"].items() if e["missing"]}
    if missing:
        tables += "\nNot run yet: " + "; ".join(
            f"{m}: {', '.join(VERDICT_RUNS[m][k] for k in ks)}" for m, ks in missing.items()
        ) + ".\n"
    return record, tables


def _claims(dataset: str, model: str, found: dict[str, Any]) -> list[list[str]]:
    """Rows of the claims table: the paper's SGDL and Normal numbers and its significance
    claim, against this repository's runs."""
    rows: list[list[str]] = []
    paper_sgdl = paper_row(dataset, model, "sgdl")
    paper_normal = paper_row(dataset, model, "normal")
    if paper_sgdl is None or paper_normal is None:
        return rows
    metric = "recall@20"
    if "sgdl" in found and "normal" in found:
        difference = paired_difference(found["sgdl"]["runs"], found["normal"]["runs"], metric)
        rows.append([model, "SGDL beats Normal in R@20, p < 0.05",
                     f"{paper_sgdl[metric]:.4f} vs {paper_normal[metric]:.4f} †",
                     f"{_value(found['sgdl'], metric)} vs {_value(found['normal'], metric)}, "
                     f"p {_p(difference.p_better)}",
                     _holds(difference.p_better < ALPHA)])
    for method, label in (("sgdl", "SGDL"), ("sgdl-as-published", "as published")):
        if method in found:
            ours = found[method]["summary"][metric]["mean"]
            rows.append([model, f"{label} reaches the paper's SGDL R@20",
                         f"{paper_sgdl[metric]:.4f}", f"{ours:.4f}",
                         _holds(ours >= paper_sgdl[metric])])
    return rows


def _value(result: dict[str, Any], metric: str) -> str:
    return f"{result['summary'][metric]['mean']:.4f}"


def _holds(condition: bool | np.bool_) -> str:
    return "yes" if condition else "no"


def add_parser(commands: Any) -> None:
    """The ``verdict`` sub-command."""
    parser = commands.add_parser("verdict", help="what the learned weights add (reads runs)",
                                 description=__doc__)
    parser.add_argument("--dataset", default="ml100k")
    parser.add_argument("--runs-dir", type=Path, default=results_folder("runs"),
                        help="where the run results are read")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="where the verdict is written")
    parser.set_defaults(handler=write_verdict)


def write_verdict(args: argparse.Namespace) -> None:
    """Write ``verdict_<dataset>.{json,md}`` from the runs in ``args.runs_dir``."""
    start = time.perf_counter()
    record, tables = verdict(args.runs_dir, args.dataset)
    path = write_result(f"verdict_{args.dataset}", record, tables, seeds=[],
                        wall_time_s=time.perf_counter() - start,
                        title=f"What SGDL's learned weights add on {args.dataset}",
                        results_dir=args.results_dir)
    print(tables)
    print(f"written to {path}")
