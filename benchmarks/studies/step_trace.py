"""Which of ``sgdl_wrap``'s files one Phase II ``SGDLWrapper.step`` runs code in, in order.

A reader following ``batch`` through the step opens each file whose code runs; every return
to a file already left is one more jump back. The trace records the ``sgdl_wrap`` source
file of every Python call and return during one step (the model's and torch's own frames
are skipped) and counts the distinct files entered and the returns to files left before,
twice: over every file, and over the step's own logic, leaving out what the reader follows
rather than reads (the data package: the batch, its interactions and negatives) and the two
learned nets, each met as one forward (``phase2/weighting.py``, ``phase2/scheduler.py``).

``python -m sgdl_wrap.benchmarks.studies.step_trace`` traces the step of each reference
configuration on the synthetic data and writes ``step_trace.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import torch

import sgdl_wrap
from sgdl_wrap import SGDLConfig, SGDLWrapper
from sgdl_wrap.benchmarks.reports.reporting import markdown_table, results_folder, write_result
from sgdl_wrap.benchmarks.running.data import load
from sgdl_wrap.benchmarks.running.models import MODELS

__all__ = ["trace_step"]

_PACKAGE = Path(sgdl_wrap.__file__).resolve().parent

# (label, model, SGDLConfig overrides): the strategies the step chooses between.
CONFIGURATIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("LightGCN: Gram look-ahead, hook factors, LSTM", "lightgcn", {}),
    ("LightGCN: functional look-ahead, hook factors", "lightgcn", {"lookahead": "functional"}),
    ("NeuMF: recorded factors, LSTM", "neumf", {}),
    ("NeuMF: exact loop", "neumf", {"per_sample_gradients": "loop"}),
    ("NeuMF: no scheduler", "neumf", {"scheduler": "none"}),
    ("NeuMF: memorized-batch features", "neumf", {"feature_lookahead": "memorized"}),
)


def trace_step(sgdl: SGDLWrapper, batch: sgdl_wrap.Batch,
               optimizer: torch.optim.Optimizer) -> list[str]:
    """The ``sgdl_wrap`` files (relative paths) whose code ran during ``sgdl.step``, in
    order, consecutive repeats merged."""
    files: list[str] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event not in ("call", "return"):
            return
        # A return lands in the caller's frame.
        where = frame if event == "call" else frame.f_back
        if where is None:
            return
        path = Path(where.f_code.co_filename).resolve()
        if not path.is_relative_to(_PACKAGE):
            return
        name = str(path.relative_to(_PACKAGE))
        if not files or files[-1] != name:
            files.append(name)

    sys.setprofile(profile)
    try:
        sgdl.step(batch, optimizer)
    finally:
        sys.setprofile(None)
    return files


# Left out of the step's own logic (see the module docstring).
_FOLLOWED = ("data/", "phase2/weighting.py", "phase2/scheduler.py")


def _summary(files: Sequence[str]) -> tuple[int, int]:
    """Distinct files entered and returns to a file left before."""
    seen: set[str] = set()
    returns = 0
    for name in files:
        returns += name in seen
        seen.add(name)
    return len(seen), returns


def _own_logic(files: Sequence[str]) -> list[str]:
    """``files`` without the followed ones, consecutive repeats merged."""
    kept: list[str] = []
    for name in files:
        if not name.startswith(_FOLLOWED) and (not kept or kept[-1] != name):
            kept.append(name)
    return kept


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sgdl_wrap.benchmarks.studies.step_trace",
                                     description=__doc__)
    parser.add_argument("--results-dir", type=Path, default=results_folder("studies"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = load("synthetic", None)
    rows, records = [], []
    for label, model_name, settings in CONFIGURATIONS:
        torch.manual_seed(0)
        spec = MODELS[model_name]
        model = spec.build(data.train)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        sgdl = SGDLWrapper(model, spec.make_loss(), train=data.train,
                           config=SGDLConfig(seed=0, history=1, **settings))
        sgdl.end_epoch()
        sgdl.start_self_guided()
        batches = sgdl.batches(128)
        sgdl.step(next(batches), optimizer)  # the first step builds the scheduler
        files = trace_step(sgdl, next(batches), optimizer)
        own = _own_logic(files)
        entered, returns = _summary(files)
        own_entered, own_returns = _summary(own)
        records.append({"configuration": label, "model": model_name, "settings": settings,
                        "files": files, "entered": entered, "returns": returns,
                        "own_logic": own, "own_entered": own_entered,
                        "own_returns": own_returns})
        rows.append([label, own_entered, own_returns, entered, returns, " → ".join(own)])
    write_result(
        "step_trace", {"configurations": records},
        markdown_table(["configuration", "files (step logic)", "returns (step logic)",
                        "files (all)", "returns (all)", "path through the step logic"], rows),
        seeds=[0], wall_time_s=time.perf_counter() - start,
        title="Files one Phase II step runs code in", results_dir=args.results_dir,
    )
    print(markdown_table(["configuration", "files", "returns", "all files", "all returns"],
                         [r[:5] for r in rows]))


if __name__ == "__main__":
    main()
