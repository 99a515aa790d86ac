"""SGDL's Phase II cost against plain training, per model, measured in one run.

``python -m sgdl_wrap.benchmarks.studies.speed --model lightgcn neumf cdae ngcf --threads 2``

For each model: a Normal model (plain training, after ``--warmup`` untimed batches) and, with
the same seed, an SGDL one that trains one Phase I epoch, does the end-of-epoch work
(memorization test, noise estimate; Phase II is forced to start there) and goes on in Phase II
with the default settings (per-sample gradient factors; the look-ahead through the
propagation Gram where the model offers one). Then ``--rounds`` rounds each time a block of
Normal batches followed by a block of Phase II batches, so that a change in the machine's
speed during the run reaches both alike; ``--max-batches`` (per method, over all rounds)
times part of an epoch and extrapolates the epoch time. For comparison, as many Phase II
batches with the functional look-ahead, and optionally ``--loop-batches`` with the exact
per-sample loop (the authors' approach) show what the Gram and the factors save. Every batch
is timed; the ratio is Phase II epoch / Normal epoch, overall and per round. The table
gives the median of the per-round ratios with their range next to the overall one: a burst
of load on a shared machine moves a few rounds, and the overall ratio with them, but hardly
the median.
Writes ``benchmarks/results/speed_<dataset>.{json,md}``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sgdl_wrap import Batch
from sgdl_wrap.benchmarks.reports.reporting import markdown_table, results_folder, write_result
from sgdl_wrap.benchmarks.running.data import default_data_dir, load
from sgdl_wrap.benchmarks.running.models import MODELS
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.trainers import SGDLTrainer, Trainer

log = logging.getLogger("sgdl_wrap.benchmarks.studies.speed")


def timed_batches(
    step: Any, batches: Iterable[Batch], label: str, total: int | None = None
) -> list[float]:
    """Seconds per batch of ``step(batch)`` over ``batches``."""
    seconds = []
    for batch in tqdm(batches, desc=label, total=total, leave=False, mininterval=5):
        start = time.perf_counter()
        step(batch)
        seconds.append(time.perf_counter() - start)
    return seconds


def endless(epoch_batches: Callable[[], Iterable[Batch]]) -> Iterator[Batch]:
    """Batches of one epoch after another (timing may need more than one epoch holds)."""
    return itertools.chain.from_iterable(epoch_batches() for _ in itertools.count())


def _blocks(total: int, rounds: int) -> list[int]:
    """``total`` batches split into ``rounds`` blocks as equal as can be, none empty."""
    rounds = max(1, min(rounds, total))
    return [total // rounds + (i < total % rounds) for i in range(rounds)]


def _summary(seconds: Sequence[float], batches_per_epoch: int) -> dict[str, float]:
    """Per-batch statistics; the epoch time is the mean batch time x batches per epoch (the
    measured sum when every batch of the epoch was timed)."""
    return {
        "epoch_s": float(np.mean(seconds)) * batches_per_epoch,
        "batches_timed": len(seconds),
        "batch_ms_median": 1000 * float(np.median(seconds)),
        "batch_ms_mean": 1000 * float(np.mean(seconds)),
    }


def _time_phase2_variant(
    data: Any, args: argparse.Namespace, model: str, setting: dict[str, Any],
    memorized: np.ndarray, batches: int, label: str,
) -> list[float]:
    """Seconds per batch of the first ``batches`` Phase II batches of a fresh SGDL run with
    ``setting`` added, switched to Phase II on the ``memorized`` rows."""
    trainer = SGDLTrainer(
        data,
        RunConfig(dataset=args.dataset, model=model, method="sgdl", seed=args.seed,
                  extra={"switch_epoch": 0, "history": 1, **setting}),
    )
    trainer.sgdl.start_self_guided(memorized)
    trainer.model.train()
    return timed_batches(
        lambda batch: trainer.sgdl.step(batch, trainer.optimizer),
        itertools.islice(trainer.sgdl.batches(trainer.config.resolved_batch_size()), batches),
        label, batches,
    )


def measure(data: Any, args: argparse.Namespace, model: str) -> dict[str, Any]:
    config = RunConfig(dataset=args.dataset, model=model, method="normal", seed=args.seed)
    batch_size = config.resolved_batch_size()
    total = -(-len(data.train) // batch_size)

    normal = Trainer(data, config)
    normal.model.train()

    def plain_step(batch: Batch) -> None:
        loss = normal.loss(normal.recommender.score(batch.users, batch.candidates)).mean()
        normal.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        normal.optimizer.step()

    normal_stream = endless(normal.batches)
    for batch in itertools.islice(normal_stream, args.warmup):
        plain_step(batch)

    sgdl_config = RunConfig(
        dataset=args.dataset, model=model, method="sgdl", seed=args.seed,
        extra={"switch_epoch": 0, "history": 1},
    )
    trainer = SGDLTrainer(data, sgdl_config)
    sgdl, optimizer = trainer.sgdl, trainer.optimizer
    trainer.model.train()

    def sgdl_step(batch: Batch) -> None:
        sgdl.step(batch, optimizer)

    # Phase I runs whole: the memorization test at its end needs a trained epoch.
    phase1_seconds = timed_batches(
        sgdl_step, sgdl.batches(batch_size), f"{model} SGDL phase I", total
    )
    start = time.perf_counter()
    report = sgdl.end_epoch()
    end_epoch_s = time.perf_counter() - start
    phase2_stream = endless(lambda: sgdl.batches(batch_size))
    limit = args.max_batches or total
    normal_seconds: list[float] = []
    phase2_seconds: list[float] = []
    round_ratios = []
    for block in _blocks(limit, args.rounds):
        normal_block = timed_batches(plain_step, itertools.islice(normal_stream, block),
                                      f"{model} normal", block)
        phase2_block = timed_batches(sgdl_step, itertools.islice(phase2_stream, block),
                                      f"{model} SGDL phase II", block)
        normal_seconds += normal_block
        phase2_seconds += phase2_block
        round_ratios.append(float(np.mean(phase2_block) / np.mean(normal_block)))
    result: dict[str, Any] = {
        "batch_size": batch_size,
        "batches_per_epoch": total,
        "normal": _summary(normal_seconds, total),
        "sgdl_phase1": _summary(phase1_seconds, total),
        "end_epoch_s": end_epoch_s,
        "memorized_share_at_switch": report.memory_ratio,
        "sgdl_phase2": _summary(phase2_seconds, total),
        "per_sample_gradients": sgdl.per_sample_strategy,
        "lookahead": sgdl.lookahead_strategy,
    }
    result["phase2_over_normal"] = result["sgdl_phase2"]["epoch_s"] / result["normal"]["epoch_s"]
    result["phase2_over_normal_per_round"] = round_ratios
    result["phase2_over_normal_round_median"] = float(np.median(round_ratios))
    if sgdl.lookahead_strategy == "gram":
        functional_seconds = _time_phase2_variant(
            data, args, model, {"lookahead": "functional"}, sgdl.memorized, limit,
            f"{model} SGDL phase II, functional look-ahead",
        )
        result["sgdl_phase2_functional"] = _summary(functional_seconds, total)
    if args.loop_batches:
        loop_seconds = _time_phase2_variant(
            data, args, model, {"per_sample_gradients": "loop"},
            np.ones(len(data.train), dtype=bool), args.loop_batches,
            f"{model} SGDL phase II, loop",
        )
        result["sgdl_phase2_loop"] = _summary(loop_seconds, total)
    return result


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml100k")
    parser.add_argument("--model", nargs="+", choices=sorted(MODELS), default=["lightgcn"])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=10, help="untimed Normal batches first")
    parser.add_argument("--max-batches", type=int, default=0,
                        help="time only this many batches of the Normal and Phase II epochs "
                             "and extrapolate (0: whole epochs)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternate this many blocks of Normal and Phase II batches")
    parser.add_argument("--loop-batches", type=int, default=0,
                        help="also time this many Phase II batches with the exact loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", type=Path, default=results_folder("studies"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    data = load(args.dataset, args.data_dir)
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    measured = {model: measure(data, args, model) for model in args.model}
    rows = []
    for model, r in measured.items():
        loop = r.get("sgdl_phase2_loop")
        functional = r.get("sgdl_phase2_functional")
        rows.append([
            model,
            f"{r['normal']['epoch_s']:.2f}",
            f"{r['normal']['batch_ms_median']:.1f}",
            f"{r['sgdl_phase2']['epoch_s']:.2f}",
            f"{r['sgdl_phase2']['batch_ms_median']:.1f}",
            f"{r['phase2_over_normal']:.2f}",
            f"{r['phase2_over_normal_round_median']:.2f} "
            f"({min(r['phase2_over_normal_per_round']):.2f}-"
            f"{max(r['phase2_over_normal_per_round']):.2f})",
            r["lookahead"],
            f"{functional['batch_ms_median']:.1f}" if functional else "",
            f"{r['end_epoch_s']:.2f}",
            f"{loop['batch_ms_median']:.0f}" if loop else "",
        ])
    header = ["model", "Normal epoch s", "Normal ms/batch", "Phase II epoch s",
              "Phase II ms/batch", "Phase II / Normal", "median per round (range)", "look-ahead",
              "functional look-ahead ms/batch", "end_epoch s", "loop ms/batch"]
    path = write_result(
        f"speed_{args.dataset}",
        {"dataset": args.dataset, "threads": args.threads, "models": measured,
         "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]}},
        markdown_table(header, rows),
        seeds=[args.seed], wall_time_s=time.perf_counter() - start,
        title=f"SGDL Phase II vs Normal training time on {args.dataset}",
        results_dir=args.results_dir,
    )
    print(markdown_table(header, rows))
    return path


if __name__ == "__main__":
    main()
