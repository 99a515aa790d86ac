"""Command line: ``sgdl-wrap run --dataset ml100k --model lightgcn --seeds 0 1 2`` (or
``python -m sgdl_wrap.benchmarks run ...``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sgdl_wrap.benchmarks.demo import add_parser as add_demo_parser
from sgdl_wrap.benchmarks.reports.paper import AUTHORS_LOG, METRIC_COLUMNS, paper_row
from sgdl_wrap.benchmarks.reports.reporting import markdown_table, results_folder, write_result
from sgdl_wrap.benchmarks.reports.significance import ALPHA, paired_run_p
from sgdl_wrap.benchmarks.reports.verdict import add_parser as add_verdict_parser
from sgdl_wrap.benchmarks.reproduce import add_parser as add_reproduce_parser
from sgdl_wrap.benchmarks.running.data import default_data_dir, load
from sgdl_wrap.benchmarks.running.methods import METHODS
from sgdl_wrap.benchmarks.running.models import MODELS
from sgdl_wrap.benchmarks.running.run_config import RunConfig, parse_setting
from sgdl_wrap.benchmarks.running.runner import cached_runs, time_epochs
from sgdl_wrap.benchmarks.running.trainers import SGDLTrainer
from sgdl_wrap.benchmarks.tune import add_parser as add_tune_parser
from sgdl_wrap.data.datasets import DATASETS

log = logging.getLogger("benchmarks")

# Finished runs and checkpoints: $SGDL_CACHE_DIR, else the user's cache folder (never inside
# an installed package).
CACHE_DIR = Path(os.environ.get("SGDL_CACHE_DIR") or Path.home() / ".cache" / "sgdl_wrap" / "runs")


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation over seeds of every test metric."""
    summary = {}
    for metric in runs[0]["test"]:
        values = np.array([r["test"][metric] for r in runs])
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        summary[metric] = {"mean": float(values.mean()), "std": std}
    return summary


def _cell(summary: dict[str, dict[str, float]], metric: str) -> str:
    return f"{summary[metric]['mean']:.4f} ± {summary[metric]['std']:.4f}"


def _seed_count(runs: Sequence[Any]) -> str:
    return "1 seed" if len(runs) == 1 else f"{len(runs)} seeds"


def _clean_ratio_at_switch(run: dict[str, Any]) -> str:
    switch = run.get("switch_epoch")
    return "-" if switch is None else f"{run['epochs'][switch]['clean_ratio']:.3f}"


# Run settings that make two methods' runs comparable seed by seed (all but the method,
# its own settings, the seed and where it ran).
_PROTOCOL = ("dataset", "model", "epochs", "patience", "eval_every", "batch_size", "lr", "ks")


def _protocol_differences(runs: Sequence[dict[str, Any]], others: Sequence[dict[str, Any]]) -> str:
    """``"epochs 200 vs 400, ..."`` (``others``' value first) for every protocol setting on
    which the two sets of runs differ; empty when they agree."""
    mine = {k: {json.dumps(r["config"][k]) for r in runs} for k in _PROTOCOL}
    theirs = {k: {json.dumps(r["config"][k]) for r in others} for k in _PROTOCOL}
    return ", ".join(
        f"{k} {' / '.join(sorted(theirs[k]))} vs {' / '.join(sorted(mine[k]))}"
        for k in _PROTOCOL if mine[k] != theirs[k]
    )


def _protocol_settings(args: argparse.Namespace) -> tuple[int, int]:
    """``patience`` and ``eval_every``: as given, else what the method's protocol fixes,
    else 10 and 1; a value given against the method's protocol is a usage error."""
    protocol = METHODS[args.method].protocol
    settings: dict[str, int] = {}
    for key, default in (("patience", 10), ("eval_every", 1)):
        given = getattr(args, key)
        if given is not None and key in protocol and given != protocol[key]:
            raise SystemExit(f"error: --{key.replace('_', '-')} {given}: {args.method} runs "
                             f"with {protocol[key]}")
        settings[key] = given if given is not None else protocol.get(key, default)
    return settings["patience"], settings["eval_every"]


def _two_phase(method: str) -> bool:
    """Whether ``method`` trains through SGDL's two phases (SGDL and its controls)."""
    return issubclass(METHODS[method], SGDLTrainer)


def _result_name(args: argparse.Namespace, model: str, label: str) -> str:
    """The result file name (no suffix) of ``label`` (``<method>[_<tag>]``) for ``model``."""
    return f"run_{args.dataset}_{model}_{label}"


def _comparison_files(args: argparse.Namespace, model: str) -> list[tuple[str, Path]]:
    """``(label, file)`` of the results ``--compare`` names, or by default (SGDL only) of this
    repository's Normal run of the same tag (the same protocol) when it ran, else the
    untagged one."""
    def located(label: str) -> tuple[str, Path]:
        return label, args.results_dir / f"{_result_name(args, model, label)}.json"

    def named(result: str) -> tuple[str, Path]:
        # A path lets a run written to a scratch folder be set beside a committed result.
        if not result.endswith(".json"):
            return located(result)
        file = Path(result)
        return file.stem.removeprefix(_result_name(args, model, "")), file

    if args.compare:
        files = [named(result) for result in args.compare]
        missing = [str(file) for _, file in files if not file.exists()]
        if missing:
            raise FileNotFoundError(f"--compare: no result file {', '.join(missing)}")
        return files
    if not _two_phase(args.method):
        return []
    labels = [f"normal_{args.tag}", "normal"] if args.tag else ["normal"]
    return [(label, file) for label, file in map(located, labels) if file.exists()][:1]


def _comparison(
    runs: Sequence[dict[str, Any]], label: str, other_file: Path
) -> tuple[list[list[str]], dict[str, Any] | None]:
    """Table rows (source and metric cells) for the runs of ``other_file`` (named ``label``)
    and the paired test of ``runs`` over them; the test's record, or None without two
    shared seeds or when the other runs followed another protocol (their row then says
    which settings differ)."""
    other = json.loads(other_file.read_text())
    differences = _protocol_differences(runs, other["runs"])
    rows = [[f"this repo, {label} ({_seed_count(other['runs'])}"
             + (f"; another protocol: {differences})" if differences else ")"),
             *(_cell(other["summary"], m) for m in METRIC_COLUMNS)]]
    if differences:
        return rows, None
    tests = {m: paired_run_p(runs, other["runs"], m) for m in runs[0]["test"]}
    seeds = next(iter(tests.values()))[0]
    if len(seeds) < 2:
        return rows, None
    p_values = {m: p for m, (_, p) in tests.items()}
    rows.append([f"p, this run > {label} (paired, seeds {' '.join(map(str, seeds))})",
                 *(f"{p_values[m]:.3f}" + (" †" if p_values[m] < ALPHA else "")
                   for m in METRIC_COLUMNS)])
    return rows, {"against": label, "seeds": seeds, "p": p_values}


def _run_command(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load(args.dataset, args.data_dir)
    log.info("dataset %s: %s", args.dataset, data.summary())
    for model in args.model:
        start = time.perf_counter()
        # Looked up before training, so that a misspelt --compare fails at once.
        other_files = _comparison_files(args, model)
        patience, eval_every = _protocol_settings(args)
        configs = [
            RunConfig(
                dataset=args.dataset, model=model, method=args.method, seed=seed,
                epochs=args.epochs, patience=patience, eval_every=eval_every,
                batch_size=args.batch_size, lr=args.lr, device=args.device,
                extra=dict(args.settings),
            )
            for seed in args.seeds
        ]
        runs = cached_runs(data, configs, None if args.no_cache else args.cache_dir)
        for seed, result in zip(args.seeds, runs):
            log.info("%s seed %d: test %s", model, seed, result["test"])
        summary = summarize(runs)
        paper_method = METHODS[args.method].paper_method
        paper = None if paper_method is None else paper_row(args.dataset, model, paper_method)
        sgdl = _two_phase(args.method)
        header = ["source", *METRIC_COLUMNS, "best epoch", "epoch s"]
        header += ["switch epoch", "est. clean ratio at switch"] if sgdl else []
        this_run = [
            f"this run ({_seed_count(runs)})", *(_cell(summary, m) for m in METRIC_COLUMNS),
            " / ".join(str(r["best_epoch"]) for r in runs),
            f"{np.mean([r['epoch_seconds_mean'] for r in runs]):.2f}",
        ]
        if sgdl:
            this_run += [" / ".join(str(r["switch_epoch"]) for r in runs),
                         " / ".join(_clean_ratio_at_switch(r) for r in runs)]
        rows: list[list[Any]] = [this_run]
        padding = [""] * (len(header) - 1 - len(METRIC_COLUMNS))
        gap = None
        if paper is not None:
            gap = {m: summary[m]["mean"] - paper[m] for m in METRIC_COLUMNS}
            rows.append([f"paper ({paper_method})", *(paper[m] for m in METRIC_COLUMNS), *padding])
            rows.append(["difference", *(f"{gap[m]:+.4f}" for m in METRIC_COLUMNS), *padding])
        references = {}
        if sgdl:
            references["paper (normal)"] = paper_row(args.dataset, model, "normal")
            references["authors' log"] = AUTHORS_LOG.get((args.dataset, model, "sgdl"))
        for label, row in references.items():
            if row is not None:
                rows.append([label, *(row[m] for m in METRIC_COLUMNS), *padding])
        paired_tests = []
        for label, other_file in other_files:
            other_rows, test = _comparison(runs, label, other_file)
            rows += [[*row, *padding] for row in other_rows]
            if test is not None:
                paired_tests.append(test)
        name = _result_name(args, model, args.method + (f"_{args.tag}" if args.tag else ""))
        runs_wall_time_s = sum(r["wall_time_s"] for r in runs)
        path = write_result(
            name,
            {"dataset": args.dataset, "model": model, "method": args.method,
             "summary": summary, "paper": paper, "difference_to_paper": gap,
             "paired_tests": paired_tests, "runs_wall_time_s": runs_wall_time_s,
             "runs": runs},
            markdown_table(header, rows)
            + (f"\n† p < {ALPHA}, one-sided paired t-test over the shared seeds.\n"
               if paired_tests else "")
            + f"\nTraining time of the runs, cached ones included: {runs_wall_time_s:.0f} s.\n",
            seeds=args.seeds, wall_time_s=time.perf_counter() - start, device=args.device,
            title=f"{model} / {args.method} on {args.dataset}", results_dir=args.results_dir,
        )
        print(f"{name}: " + ", ".join(f"{m} {_cell(summary, m)}" for m in METRIC_COLUMNS))
        print(f"written to {path}")


def _timing_command(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    data = load(args.dataset, args.data_dir)
    start = time.perf_counter()
    measured = {}
    for model in args.model:
        config = RunConfig(dataset=args.dataset, model=model, method=args.method, seed=args.seed,
                           epochs=args.epochs + 1, device=args.device)
        measured[model] = time_epochs(data, config)
        log.info("%s: %s", model, measured[model])
    rows = [[m, f"{r['epoch_s_median']:.2f}", f"{r['batch_ms_median']:.2f}", r["batches"]]
            for m, r in measured.items()]
    name = f"timing_{args.dataset}_{args.method}"
    write_result(
        name, {"dataset": args.dataset, "method": args.method, "threads": args.threads,
               "models": measured},
        markdown_table(["model", "epoch s (median)", "ms / batch", "batches / epoch"], rows),
        seeds=[args.seed], wall_time_s=time.perf_counter() - start, device=args.device,
        title=f"{args.method} training time per epoch on {args.dataset}",
        results_dir=args.results_dir,
    )
    print(markdown_table(["model", "epoch s", "ms / batch", "batches"], rows))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sgdl-wrap", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every evaluation")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="train, select on validation, test")
    run_parser.add_argument("--dataset", required=True, choices=[*DATASETS, "synthetic"])
    run_parser.add_argument("--model", required=True, nargs="+", choices=sorted(MODELS))
    run_parser.add_argument("--method", default="normal", choices=sorted(METHODS))
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    run_parser.add_argument("--device", default="cpu")
    run_parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                            help="offline data directory (default: $SGDL_DATA_DIR or "
                                 "../shared/data when present)")
    run_parser.add_argument("--epochs", type=int, default=400, help="maximum epochs")
    run_parser.add_argument("--patience", type=int, default=None,
                            help="validations without improvement before stopping (default "
                                 "10, or what the method's protocol fixes)")
    run_parser.add_argument("--eval-every", type=int, default=None,
                            help="epochs between validations (default 1, or what the "
                                 "method's protocol fixes)")
    run_parser.add_argument("--batch-size", type=int, default=None)
    run_parser.add_argument("--lr", type=float, default=None)
    run_parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    run_parser.add_argument("--set", dest="settings", type=parse_setting, action="append",
                            default=[], metavar="KEY=VALUE",
                            help="a setting of the method (an SGDLConfig field for sgdl, e.g. "
                                 "history=5; e.g. max_rate=0.1 for tce); unknown keys raise")
    run_parser.add_argument("--results-dir", type=Path, default=results_folder("runs"))
    run_parser.add_argument("--tag", default="", help="suffix of the result file name")
    run_parser.add_argument(
        "--compare", nargs="+", metavar="RESULT",
        help="results to set beside this run, each with a paired test over the shared seeds "
             "if it followed the same protocol: a name in --results-dir of the same dataset "
             "and model (e.g. normal_authors-budget-400) or a result's .json file anywhere; "
             "default for sgdl: the Normal run of --tag, else the untagged one",
    )
    run_parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR,
                            help="finished runs, keyed by their full configuration")
    run_parser.add_argument("--no-cache", action="store_true", help="always train")
    run_parser.set_defaults(handler=_run_command)

    timing = commands.add_parser("timing", help="wall time per training epoch (no evaluation)")
    timing.add_argument("--dataset", default="ml100k", choices=[*DATASETS, "synthetic"])
    timing.add_argument("--model", nargs="+", default=sorted(MODELS), choices=sorted(MODELS))
    timing.add_argument("--method", default="normal", choices=sorted(METHODS))
    timing.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up")
    timing.add_argument("--seed", type=int, default=0)
    timing.add_argument("--threads", type=int, default=2)
    timing.add_argument("--device", default="cpu")
    timing.add_argument("--data-dir", type=Path, default=default_data_dir())
    timing.add_argument("--results-dir", type=Path, default=results_folder("studies"))
    timing.set_defaults(handler=_timing_command)

    add_reproduce_parser(commands, default_data_dir(), CACHE_DIR, sorted(MODELS),
                         [*DATASETS, "synthetic"])
    add_tune_parser(commands, default_data_dir(), results_folder("tuning"), CACHE_DIR,
                    sorted(MODELS), sorted(METHODS), [*DATASETS, "synthetic"])
    add_verdict_parser(commands)
    add_demo_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    args.handler(args)
