"""``python -m sgdl_wrap.benchmarks reproduce ARTEFACT``: the paper's Tables 2-5 and Figures 1, 3-5.

Every artefact is a list of runs (model, method, seed, settings); each run is cached by its full
configuration (:func:`sgdl_wrap.benchmarks.running.runner.cached_runs`) and checkpointed after every
epoch until it finishes, so a repeated or interrupted command only trains what is missing,
continuing an interrupted run after its last finished epoch, and artefacts share runs (Table 2's
SGDL runs are Table 3's "SGDL" row, Table 4's "0" column, Table 5's LSTM row and the figures' SGDL
runs). The same command started again on the same cache (one process per core) shares the work: each
run is trained by one process and read by the others.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sgdl_wrap.benchmarks.reports.paper import (
    METRIC_COLUMNS,
    TABLE3,
    TABLE4,
    TABLE4_SHIFTS,
    TABLE5,
    paper_row,
)
from sgdl_wrap.benchmarks.reports.reporting import markdown_table, results_folder, write_result
from sgdl_wrap.benchmarks.reports.significance import ALPHA, paired_run_p
from sgdl_wrap.benchmarks.running.data import load
from sgdl_wrap.benchmarks.running.methods import GRAPH_ONLY, POINTWISE_ONLY
from sgdl_wrap.benchmarks.running.run_config import RunConfig, parse_setting
from sgdl_wrap.benchmarks.running.runner import (
    CachedRun,
    RunProgress,
    cached_runs,
    read_result,
    run_path,
)
from sgdl_wrap.benchmarks.running.trainers import SGDLTrainer
from sgdl_wrap.data.datasets import Dataset

__all__ = ["ARTEFACTS", "Cell", "reproduce", "table2_methods"]

log = logging.getLogger(__name__)

GRAPH_MODELS = frozenset({"ngcf", "lightgcn"})
BASELINES = ("normal", "wbpr", "ir", "tce", "rce", "deca", "sgcn", "sgl")


def _shift_label(shift: float) -> str:
    return f"{shift * 100:+.0f}%" if shift else "0"


# The SGDL rows of Tables 3-5: label -> SGDL settings.
TABLE3_VARIANTS: dict[str, dict[str, Any]] = {
    "SGDL": {}, "w/o-DLS": {"denoising": False}, "w/o-ADS": {"scheduler": "none"},
}
TABLE4_VARIANTS: dict[str, dict[str, Any]] = {
    _shift_label(s): {"noise_rate_shift": s} if s else {} for s in TABLE4_SHIFTS
}
TABLE5_VARIANTS: dict[str, dict[str, Any]] = {
    "top_f": {"scheduler": "top_f"}, "mlp": {"scheduler": "mlp"}, "lstm": {},
}
# The SGDL settings each artefact varies, which --sgdl-set may therefore not fix.
VARIED_SGDL_SETTINGS: dict[str, frozenset[str]] = {
    name: frozenset(key for settings in variants.values() for key in settings)
    for name, variants in (("table3", TABLE3_VARIANTS), ("table4", TABLE4_VARIANTS),
                           ("table5", TABLE5_VARIANTS))
}
# Baseline settings other than their authors', by (dataset, method), with where they come
# from. SGL-ED at its authors' lambda1 = 0.1 stays at chance within the epoch caps used here
# (ml100k and ml100k-full alike); 0.01 was chosen on ml100k's validation set by ``python -m
# benchmarks tune`` (results/tune_ml100k_lightgcn_sgl_lambda1.md).
TABLE2_SETTINGS: dict[tuple[str, str], tuple[dict[str, Any], str]] = {
    ("ml100k", "sgl"): ({"lambda1": 0.01}, "chosen on the validation set"),
    ("ml100k-full", "sgl"): ({"lambda1": 0.01}, "chosen on ml100k's validation set"),
}


def table2_methods(model: str) -> list[str]:
    """The methods Table 2 runs for ``model``: every baseline that applies, then SGDL."""
    graph = model in GRAPH_MODELS
    return [m for m in BASELINES
            if not (m in GRAPH_ONLY and not graph) and not (m in POINTWISE_ONLY and graph)
            ] + ["sgdl"]


@dataclass
class Cell:
    """One table cell: a (model, method, settings) and its runs, one per seed."""

    model: str
    label: str
    configs: list[RunConfig]
    runs: list[dict[str, Any]] = field(default_factory=list)

    def values(self, metric: str) -> np.ndarray:
        return np.array([r["test"][metric] for r in self.runs])

    def mean(self, metric: str) -> float:
        return float(self.values(metric).mean())

    def text(self, metric: str, marked: bool = False) -> str:
        values = self.values(metric)
        std = values.std(ddof=1) if values.size > 1 else 0.0
        return f"{values.mean():.4f} ± {std:.4f}" + (" †" if marked else "")


class Reproduction:
    """Plans, runs (through the cache) and reports one artefact."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.models: list[str] = args.model
        self.artefact = args.artefact
        self.sgdl_settings: dict[str, Any] = dict(args.sgdl_settings or [])

    def config(self, model: str, method: str, seed: int, extra: dict[str, Any]) -> RunConfig:
        """A run of the artefact; an SGDL run takes ``--sgdl-set`` under ``extra``."""
        a = self.args
        if method == "sgdl":
            extra = {**self.sgdl_settings, **extra}
        return RunConfig(dataset=a.dataset, model=model, method=method, seed=seed,
                         epochs=a.epochs, patience=a.patience, eval_every=a.eval_every,
                         device=a.device, extra=dict(extra))

    def sgdl_note(self) -> str:
        return f" SGDL runs use {self.sgdl_settings}." if self.sgdl_settings else ""

    def cell(self, model: str, label: str, method: str, extra: dict[str, Any]) -> Cell:
        return Cell(model, label, [self.config(model, method, s, extra) for s in self.args.seeds])

    def execute(self, data: Dataset, cells: Sequence[Cell]) -> float:
        """Run every cell's configurations (cached ones are read, runs another process is
        training are read when they finish); returns their total training wall time in
        seconds."""
        configs = [c for cell in cells for c in cell.configs]
        progress = _Progress(self.artefact, configs, self.args.cache_dir)
        results = cached_runs(data, configs, self.args.cache_dir, progress=progress)
        progress.close()
        for cell in cells:
            cell.runs, results = results[:len(cell.configs)], results[len(cell.configs):]
        return sum(r["wall_time_s"] for cell in cells for r in cell.runs)


class _Progress(RunProgress):
    """A progress line: runs done, the run at hand and the estimated time left.

    The estimate (:func:`eta_text`) counts the runs finished since the start wherever they
    were trained, so it holds for one process and for the same command started on several
    (each process's line counts the others' finished runs too)."""

    def __init__(self, artefact: str, configs: Sequence[RunConfig], cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        # The runs left at the start (by cache file, so a run two cells share counts once)
        # and, as they finish, their training times.
        self.kinds = {path: _kind(c) for c in configs
                      if not (path := run_path(cache_dir, c)).exists()}
        self.training_s: dict[Path, float] = {}
        self.began = time.perf_counter()
        self.bar = tqdm(total=len(configs), desc=artefact, dynamic_ncols=True,
                        bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {postfix}")

    def starting(self, config: RunConfig) -> None:
        self.bar.set_postfix_str(f"{config.model}/{config.method}/s{config.seed} {self._eta()}")

    def finished(self, config: RunConfig, outcome: CachedRun) -> None:
        path = run_path(self.cache_dir, config)
        if path in self.kinds:
            self.training_s[path] = float(outcome.result["wall_time_s"])
        self.bar.update()

    def waiting(self, runs: int) -> None:
        self.bar.set_postfix_str(
            f"waiting for {runs} run(s) another process is training {self._eta()}"
        )

    def _eta(self) -> str:
        for path in self.kinds.keys() - self.training_s.keys():
            if path.exists():  # finished by another process
                self.training_s[path] = float(read_result(path)["wall_time_s"])
        finished: dict[str, list[float]] = {}
        for path, seconds in self.training_s.items():
            finished.setdefault(self.kinds[path], []).append(seconds)
        remaining = [kind for path, kind in self.kinds.items() if path not in self.training_s]
        return eta_text(time.perf_counter() - self.began, finished, remaining)

    def close(self) -> None:
        self.bar.close()


def _kind(config: RunConfig) -> str:
    """Runs of one kind (the same configuration but the seed) take about as long."""
    return json.dumps(dict(asdict(config), seed=None), sort_keys=True, default=str)


def eta_text(elapsed_s: float, finished: Mapping[str, Sequence[float]],
             remaining: Sequence[str]) -> str:
    """The estimated time left, ``elapsed_s`` seconds of wall time after the start.

    ``finished`` maps a kind of run to the training times of its runs finished since the
    start, ``remaining`` holds the kind of each run left. A remaining run is expected to take
    the mean time of the finished runs of its kind (of all kinds while none of its kind has
    finished: SGDL runs, for one, take several times as long as Normal runs); elapsed time
    over finished training time turns that into wall time (below 1 with several processes).
    """
    if not remaining:
        return "(nothing left to train)"
    times = [t for kind_times in finished.values() for t in kind_times]
    if not times:
        return f"({len(remaining)} to train, ETA after the first)"
    overall = float(np.mean(times))
    left = sum(float(np.mean(finished[k])) if finished.get(k) else overall for k in remaining)
    seconds = elapsed_s / sum(times) * left
    return f"({len(remaining)} to train, ETA {seconds / 60:.0f} min)"


def _significant(sgdl: Cell, other: Cell, metric: str) -> bool:
    return bool(paired_run_p(sgdl.runs, other.runs, metric)[1] < ALPHA)


def _artefact_name(kind: str, args: argparse.Namespace) -> str:
    """``<kind>_<dataset>``, then ``_<tag>`` when the command names one (e.g. a run of other
    models under another epoch cap, kept beside the main table)."""
    name = f"{kind}_{args.dataset}"
    return f"{name}_{args.tag}" if args.tag else name


def _reference(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _difference(ours: float, paper: float | None) -> str:
    return "-" if paper is None else f"{ours - paper:+.4f}"


def _metric_rows(cells: Sequence[Cell], sgdl: dict[str, Cell], metrics: Sequence[str],
                 paper: Callable[[Cell], dict[str, float] | None]) -> tuple[list[Any], list[Any]]:
    rows, records = [], []
    for cell in cells:
        reference = paper(cell)
        marks = {m: cell is not sgdl[cell.model] and _significant(sgdl[cell.model], cell, m)
                 for m in metrics}
        row: list[Any] = [cell.model, cell.label]
        for m in metrics:
            ref = None if reference is None else reference.get(m)
            row += [cell.text(m, marks[m]), _reference(ref), _difference(cell.mean(m), ref)]
        rows.append(row)
        records.append({
            "model": cell.model, "method": cell.label, "seeds": [c.seed for c in cell.configs],
            "mean": {m: cell.mean(m) for m in metrics},
            "std": {m: float(cell.values(m).std(ddof=1)) if len(cell.runs) > 1 else 0.0
                    for m in metrics},
            "per_seed": {m: cell.values(m).tolist() for m in metrics},
            "paper": reference, "sgdl_significantly_better": marks,
            "epochs_run": [r["epochs_run"] for r in cell.runs],
            "best_epoch": [r["best_epoch"] for r in cell.runs],
            "switch_epoch": [r.get("switch_epoch") for r in cell.runs],
            "wall_time_s": sum(r["wall_time_s"] for r in cell.runs),
            "run_commits": sorted({r["environment"]["git_commit"] for r in cell.runs}),
        })
    return rows, records


def _header(metrics: Sequence[str]) -> list[str]:
    short = {"recall@5": "R@5", "recall@20": "R@20", "ndcg@5": "N@5", "ndcg@20": "N@20"}
    header = ["model", "method"]
    for m in metrics:
        header += [short[m], "paper", "Δ"]
    return header


def _dataset_key(dataset: str) -> str:
    return "ml100k" if dataset.startswith("ml100k") else dataset


def _table(rep: Reproduction, data: Dataset, name: str,
           cells_for: Callable[[str], tuple[list[Cell], Cell]],
           paper: Callable[[Cell], dict[str, float] | None], metrics: Sequence[str],
           note: str) -> None:
    start = time.perf_counter()
    cells, sgdl = [], {}
    for model in rep.models:
        model_cells, sgdl_cell = cells_for(model)
        cells += model_cells
        sgdl[model] = sgdl_cell
    compute = rep.execute(data, cells)
    rows, records = _metric_rows(cells, sgdl, metrics, paper)
    a = rep.args
    text = markdown_table(_header(metrics), rows) + (
        f"\nMean ± standard deviation over seeds {list(a.seeds)}; † marks a row SGDL beats "
        f"with p < {ALPHA} (one-sided paired t-test over seeds). Epoch cap {a.epochs}, "
        f"patience {a.patience}. Training compute: {compute / 3600:.2f} h. {note}"
        f"{rep.sgdl_note()}\n"
    )
    write_result(_artefact_name(name, a), {"dataset": a.dataset, "rows": records,
                                         "compute_s": compute, "epochs": a.epochs,
                                         "patience": a.patience,
                                         "sgdl_settings": rep.sgdl_settings},
                 text, seeds=a.seeds, wall_time_s=time.perf_counter() - start, device=a.device,
                 title=f"{name.capitalize()} on {a.dataset}" + (f" ({a.tag})" if a.tag else ""),
                 results_dir=a.results_dir or results_folder("tables"))
    print(text)


def table2(rep: Reproduction, data: Dataset) -> None:
    dataset, chosen = rep.args.dataset, rep.args.method

    def methods(model: str) -> list[str]:
        return [m for m in table2_methods(model) if chosen is None or m in chosen or m == "sgdl"]

    def cells(model: str) -> tuple[list[Cell], Cell]:
        made = [rep.cell(model, m, m, TABLE2_SETTINGS.get((dataset, m), ({}, ""))[0])
                for m in methods(model)]
        return made, made[-1]

    present = sorted({m for model in rep.models for m in methods(model)})
    tuned_methods = [(m, *TABLE2_SETTINGS[(dataset, m)])
                     for m in present if (dataset, m) in TABLE2_SETTINGS]
    tuned = "".join(f" {m} uses {settings}, {why}." for m, settings, why in tuned_methods)

    _table(rep, data, "table2", cells,
           lambda c: paper_row(rep.args.dataset, c.model, c.label), METRIC_COLUMNS,
           "DeCA trains NGCF and LightGCN with BCE (it is pointwise). R-CE is not in the paper."
           + tuned)


def table3(rep: Reproduction, data: Dataset) -> None:
    def cells(model: str) -> tuple[list[Cell], Cell]:
        made = [rep.cell(model, label, "sgdl", extra) for label, extra in TABLE3_VARIANTS.items()]
        return made, made[0]

    def paper(c: Cell) -> dict[str, float] | None:
        if c.label == "SGDL":
            return paper_row(rep.args.dataset, c.model, "sgdl")
        return TABLE3.get((_dataset_key(rep.args.dataset), c.model, c.label.lower()))

    _table(rep, data, "table3", cells, paper, METRIC_COLUMNS,
           "w/o-DLS: Phase II trains on the memorized data only; w/o-ADS: no scheduler.")


def table4(rep: Reproduction, data: Dataset) -> None:
    def cells(model: str) -> tuple[list[Cell], Cell]:
        made = [rep.cell(model, label, "sgdl", extra) for label, extra in TABLE4_VARIANTS.items()]
        return made, made[TABLE4_SHIFTS.index(0.0)]

    def paper(c: Cell) -> dict[str, float] | None:
        row = TABLE4.get((_dataset_key(rep.args.dataset), c.model))
        if row is None:
            return None
        return {"recall@20": row[list(TABLE4_VARIANTS).index(c.label)]}

    _table(rep, data, "table4", cells, paper, ("recall@20",),
           "+x%: the estimated noise rate is raised by x % (earlier switch to Phase II).")


def table5(rep: Reproduction, data: Dataset) -> None:
    def cells(model: str) -> tuple[list[Cell], Cell]:
        made = [rep.cell(model, label, "sgdl", extra) for label, extra in TABLE5_VARIANTS.items()]
        return made, made[-1]

    _table(rep, data, "table5", cells,
           lambda c: TABLE5.get((_dataset_key(rep.args.dataset), c.model, c.label)),
           ("recall@20", "ndcg@20"), "Scheduler of the adaptive denoising: top-F, MLP, LSTM.")


def _figure(rep: Reproduction, data: Dataset, number: int) -> None:
    from sgdl_wrap.benchmarks.reports import figures  # matplotlib only when a figure is asked for

    start = time.perf_counter()
    models = rep.models
    seed = rep.args.seeds[0]
    sgdl = {m: Cell(m, "SGDL", [rep.config(m, "sgdl", seed, {})]) for m in models}
    normal = {m: Cell(m, "Normal", [rep.config(m, "normal", seed,
                                               {"track_memorization": True})])
              for m in models} if number == 1 else {}
    compute = rep.execute(data, [*sgdl.values(), *normal.values()])
    a = rep.args
    name = _artefact_name(f"figure{number}", a)
    folder = a.results_dir or results_folder("figures")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    draw = {1: figures.figure1, 3: figures.figure3, 4: figures.figure4, 5: figures.figure5}[number]
    draw({m: c.runs[0] for m, c in sgdl.items()}, {m: c.runs[0] for m, c in normal.items()},
         path)
    write_result(name, {"dataset": a.dataset, "png": path.name, "models": models,
                        "compute_s": compute, "sgdl_settings": rep.sgdl_settings},
                 f"![Figure {number}]({path.name})\n\nTraining compute: {compute / 60:.1f} min."
                 f"{rep.sgdl_note()}\n",
                 seeds=[seed], wall_time_s=time.perf_counter() - start, device=a.device,
                 title=f"Figure {number} on {a.dataset}", results_dir=folder)
    print(f"written {path}")


ARTEFACTS: dict[str, Callable[[Reproduction, Dataset], None]] = {
    "table2": table2,
    "table3": table3,
    "table4": table4,
    "table5": table5,
    "figure1": lambda rep, data: _figure(rep, data, 1),
    "figure3": lambda rep, data: _figure(rep, data, 3),
    "figure4": lambda rep, data: _figure(rep, data, 4),
    "figure5": lambda rep, data: _figure(rep, data, 5),
}


def _check_sgdl_settings(settings: dict[str, Any], artefacts: Sequence[str]) -> None:
    """Fail before anything trains: an unknown key or invalid value, or a setting that one
    of ``artefacts`` varies (its rows would be mislabelled)."""
    SGDLTrainer.settings_for(settings, seed=0)
    for name in artefacts:
        clash = sorted(VARIED_SGDL_SETTINGS.get(name, frozenset()) & settings.keys())
        if clash:
            raise ValueError(f"--sgdl-set {clash[0]}=... conflicts with {name}, whose rows "
                             f"vary {clash[0]!r}")


def reproduce(args: argparse.Namespace) -> None:
    """Entry point of the ``reproduce`` command."""
    if args.threads:
        torch.set_num_threads(args.threads)
    names = list(ARTEFACTS) if args.artefact == "all" else [args.artefact]
    rep = Reproduction(args)
    _check_sgdl_settings(rep.sgdl_settings, names)
    data = load(args.dataset, args.data_dir)
    log.info("dataset %s: %s", args.dataset, data.summary())
    for name in names:
        rep.artefact = name
        ARTEFACTS[name](rep, data)


def add_parser(commands: Any, default_data_dir: Path | None, cache_dir: Path,
               models: Sequence[str], datasets: Sequence[str]) -> None:
    """The ``reproduce`` sub-command."""
    parser = commands.add_parser("reproduce", help="a table or figure of the paper, or all")
    parser.add_argument("artefact", choices=[*ARTEFACTS, "all"])
    parser.add_argument("--dataset", default="ml100k", choices=datasets)
    parser.add_argument("--model", nargs="+", default=list(models), choices=sorted(models))
    parser.add_argument("--method", nargs="+", default=None, choices=BASELINES,
                        help="Table 2: only these baselines (SGDL always runs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=400, help="maximum epochs per run")
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir)
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where tables and figures go (default: benchmarks/results/tables "
                             "and benchmarks/results/figures)")
    parser.add_argument("--cache-dir", type=Path, default=cache_dir)
    parser.add_argument("--tag", default="",
                        help="suffix of the output files: <artefact>_<dataset>_<tag>")
    parser.add_argument("--sgdl-set", dest="sgdl_settings", type=parse_setting,
                        action="append", metavar="KEY=VALUE",
                        help="a setting of every SGDL run (an SGDLConfig key, e.g. "
                             "meta_lr=5e-6), under the settings Tables 3-5 vary")
    parser.set_defaults(handler=reproduce)
