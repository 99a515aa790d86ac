"""What Yelp and Adressa would cost here: every stage of a run at their full size.

``python -m sgdl_wrap.benchmarks.studies.scale --dataset yelp --model lightgcn neumf --threads 2``

Their train files are not available, so this writes a **synthetic train file** of the real
size into the real id space (Table 1's interaction count; users and items drawn in
proportion to their counts in the real validation file, plus one; no pair repeated or
shared with validation or test; each row flagged noisy with the validation file's noisy
share) and builds the dataset from it and the real validation and test files through the
registry's own builder. The checksums of the validation and test files are verified; the
train file has none to verify. Accuracy on such data means nothing and is not reported:
this measures time and memory of the code at the real scale, and that nothing in a run
holds a users x items structure.

Per model, in a fresh process (so each peak memory is its own): building the model (graph
normalisation for the graph models), ``--batches`` timed Normal batches (after
``--warmup``), as many SGDL Phase I batches, the end-of-epoch work of SGDL (memorization
test over every training row, noise estimate; Phase II is forced to start there), as many
Phase II batches, and the full-ranking test evaluation of every test user, measured or,
above ``--eval-budget``, projected (:func:`time_test_evaluation`). Epoch times are
extrapolated from the batches. A
Normal and an SGDL model are alive at once, so the peak memory counts both.
Writes ``benchmarks/results/scale_<dataset>.{json,md}``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import logging
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sgdl_wrap import Batch
from sgdl_wrap.benchmarks.reports.reporting import markdown_table, results_folder, write_result
from sgdl_wrap.benchmarks.running.data import default_data_dir
from sgdl_wrap.benchmarks.running.models import MODELS
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.trainers import SGDLTrainer, Trainer
from sgdl_wrap.benchmarks.studies.speed import endless, timed_batches
from sgdl_wrap.data.datasets import DATASETS, Dataset
from sgdl_wrap.data.datasets.files import resolve_file
from sgdl_wrap.data.datasets.readers import InteractionRows, read_rating_file, read_test_file
from sgdl_wrap.metrics import evaluate

log = logging.getLogger("sgdl_wrap.benchmarks.studies.scale")

# Paper Table 1: training interactions (the authors' logs print the same train_data_len).
TRAIN_SIZES = {"yelp": 1_672_520, "adressa": 419_491}


def draw_train_rows(
    n_users: int, n_items: int, valid: InteractionRows, test: InteractionRows, size: int,
    seed: int,
) -> np.ndarray:
    """``[size, 3]`` rows ``(user, item, clean flag)`` of a synthetic train split: users and
    items drawn in proportion to their counts in ``valid`` plus one, each pair once and
    none in ``valid`` or ``test``, flagged noisy (0) with ``valid``'s noisy share."""
    rng = np.random.default_rng(seed)
    user_p = np.bincount(valid.users, minlength=n_users) + 1.0
    item_p = np.bincount(valid.items, minlength=n_items) + 1.0
    user_p, item_p = user_p / user_p.sum(), item_p / item_p.sum()
    taken = np.concatenate([valid.users * n_items + valid.items, test.users * n_items + test.items])
    if size > n_users * n_items - np.unique(taken).size:
        raise ValueError(f"{size} train pairs do not fit a {n_users}x{n_items} id space")
    keys = np.empty(0, dtype=np.int64)
    while keys.size < size:
        draws = 2 * (size - keys.size)
        fresh = (rng.choice(n_users, draws, p=user_p) * n_items
                 + rng.choice(n_items, draws, p=item_p))
        merged = np.concatenate([keys, fresh[~np.isin(fresh, taken)]])
        # The first occurrence of each pair, in draw order.
        _, first = np.unique(merged, return_index=True)
        keys = merged[np.sort(first)]
    keys = keys[:size]
    noisy_share = float(valid.noisy.mean()) if valid.noisy is not None else 0.0
    clean = (rng.random(size) >= noisy_share).astype(np.int64)
    return np.stack([keys // n_items, keys % n_items, clean], axis=1)


def synthetic_train_file(name: str, data_dir: Path, path: Path, seed: int) -> dict[str, Any]:
    """Write :func:`draw_train_rows` of ``name``'s real size and id space, from its real
    validation and test files, to ``path`` in T-CE's format; returns what it holds."""
    spec = DATASETS[name]
    valid = read_rating_file(resolve_file(spec.files["valid"], data_dir=data_dir,
                                          download=False))
    test = read_test_file(resolve_file(spec.files["test"], data_dir=data_dir, download=False))
    rows = draw_train_rows(spec.n_users, spec.n_items, valid, test, TRAIN_SIZES[name], seed)
    np.savetxt(path, rows, fmt="%d", delimiter="\t")
    return {"rows": len(rows), "users_with_rows": int(np.unique(rows[:, 0]).size),
            "items_with_rows": int(np.unique(rows[:, 1]).size),
            "noisy_share": float(1.0 - rows[:, 2].mean()), "seed": seed}


def build_dataset(name: str, data_dir: Path, train_path: Path) -> Dataset:
    """``name``'s dataset with ``train_path`` as its train file (real valid and test)."""
    spec = DATASETS[name]
    paths = {
        "train": train_path,
        **{role: resolve_file(spec.files[role], data_dir=data_dir, download=False)
           for role in ("valid", "test")},
    }
    return spec.build(spec, paths, 0)


def _peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _mean_ms(seconds: Sequence[float]) -> float:
    return 1000 * float(np.mean(seconds))


def _timed_evaluation(model: Any, data: Dataset, users: np.ndarray) -> float:
    """Seconds to rank every item for the test rows of ``users``."""
    target = data.test.select(np.isin(data.test.users, users))
    start = time.perf_counter()
    evaluate(model, target, exclude=[data.train, data.valid])
    return time.perf_counter() - start


def time_test_evaluation(
    model: Any, data: Dataset, users: int, seed: int, budget_s: float
) -> dict[str, Any]:
    """The full-ranking test evaluation's time for every test user.

    ``users`` test users drawn at random are ranked first. Where that time scaled to every
    test user is within ``budget_s`` (an over-estimate, as ranking costs a fixed part, e.g.
    a graph model's one propagation, plus a part per user), every test user is ranked and
    timed. Otherwise half of the sample is ranked too, and the all-users time is projected
    from the fixed and per-user parts that the two timings give.
    """
    with_rows = np.flatnonzero(data.test.user_counts > 0)
    users = max(1, min(users, with_rows.size))
    chosen = np.random.default_rng(seed).choice(with_rows, users, replace=False)
    sample_s = _timed_evaluation(model, data, chosen)
    if sample_s * with_rows.size / users <= budget_s:
        every_s = _timed_evaluation(model, data, with_rows)
        return {"eval_users": int(with_rows.size), "eval_projected": False,
                "eval_per_user_s": every_s / with_rows.size, "eval_all_test_users_s": every_s}
    half = users // 2
    half_s = _timed_evaluation(model, data, chosen[:half])
    per_user = max(sample_s - half_s, 0.0) / (users - half)
    fixed = max(half_s - half * per_user, 0.0)
    return {"eval_users": users, "eval_projected": True, "eval_half_s": half_s,
            "eval_s": sample_s, "eval_fixed_s": fixed, "eval_per_user_s": per_user,
            "eval_all_test_users_s": fixed + per_user * with_rows.size}


def measure(
    name: str, data_dir: Path, train_path: Path, model: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Every stage of ``model`` on the dataset; run in a process of its own."""
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    start = time.perf_counter()
    data = build_dataset(name, data_dir, train_path)
    result: dict[str, Any] = {"data_s": time.perf_counter() - start,
                              "data_peak_mib": _peak_rss_mib()}
    config = RunConfig(dataset=name, model=model, method="normal", seed=args.seed)
    batch_size = config.resolved_batch_size()
    batches_per_epoch = -(-len(data.train) // batch_size)

    start = time.perf_counter()
    normal = Trainer(data, config)
    result["model_build_s"] = time.perf_counter() - start
    normal.model.train()

    def plain_step(batch: Batch) -> None:
        loss = normal.loss(normal.recommender.score(batch.users, batch.candidates)).mean()
        normal.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        normal.optimizer.step()

    stream = endless(normal.batches)
    timed_batches(plain_step, itertools.islice(stream, args.warmup), f"{model} warm-up")
    normal_s = timed_batches(plain_step, itertools.islice(stream, args.batches),
                             f"{model} normal", args.batches)

    sgdl_config = RunConfig(dataset=name, model=model, method="sgdl", seed=args.seed,
                            extra={"switch_epoch": 0, "history": 1})
    trainer = SGDLTrainer(data, sgdl_config)
    sgdl, optimizer = trainer.sgdl, trainer.optimizer
    trainer.model.train()
    phase1 = endless(lambda: sgdl.batches(batch_size))
    phase1_s = timed_batches(lambda b: sgdl.step(b, optimizer),
                             itertools.islice(phase1, args.batches), f"{model} phase I",
                             args.batches)
    start = time.perf_counter()
    report = sgdl.end_epoch()
    end_epoch_s = time.perf_counter() - start
    phase2 = endless(lambda: sgdl.batches(batch_size))
    timed_batches(lambda b: sgdl.step(b, optimizer), itertools.islice(phase2, args.warmup),
                  f"{model} phase II warm-up")
    phase2_s = timed_batches(lambda b: sgdl.step(b, optimizer),
                             itertools.islice(phase2, args.batches), f"{model} phase II",
                             args.batches)

    evaluation = time_test_evaluation(trainer.recommender, data, args.eval_users, args.seed,
                                      args.eval_budget)

    normal_ms, phase2_ms = _mean_ms(normal_s), _mean_ms(phase2_s)
    result.update({
        "batch_size": batch_size,
        "batches_per_epoch": batches_per_epoch,
        "batches_timed": args.batches,
        "normal_ms_per_batch": normal_ms,
        "phase1_ms_per_batch": _mean_ms(phase1_s),
        "phase2_ms_per_batch": phase2_ms,
        "normal_epoch_s": normal_ms * batches_per_epoch / 1000,
        "phase2_epoch_s": phase2_ms * batches_per_epoch / 1000,
        "phase2_over_normal": phase2_ms / normal_ms,
        "lookahead": sgdl.lookahead_strategy,
        "per_sample_gradients": sgdl.per_sample_strategy,
        "end_epoch_s": end_epoch_s,
        "memorized_share": report.memory_ratio,
        **evaluation,
        "peak_mib": _peak_rss_mib(),
    })
    return result


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(TRAIN_SIZES), default="yelp")
    parser.add_argument("--model", nargs="+", choices=sorted(MODELS), default=["lightgcn"])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches before each timing")
    parser.add_argument("--batches", type=int, default=20, help="timed batches per stage")
    parser.add_argument("--eval-users", type=int, default=200,
                        help="test users ranked first (drawn at random)")
    parser.add_argument("--eval-budget", type=float, default=300.0,
                        help="rank every test user when the first ones say it takes at most "
                             "this many seconds; else project the time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", type=Path, default=results_folder("studies"))
    args = parser.parse_args(argv)
    if args.data_dir is None:
        parser.error("--data-dir (or SGDL_DATA_DIR) must hold the validation and test files")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    wall = time.perf_counter()
    measured: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        train_path = Path(scratch) / "train.rating"
        start = time.perf_counter()
        train = synthetic_train_file(args.dataset, args.data_dir, train_path, args.seed)
        train["write_s"] = time.perf_counter() - start
        log.info("synthetic train file: %s", train)
        for model in args.model:
            # A process per model: its peak memory is its own, not the largest so far.
            with concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            ) as pool:
                measured[model] = pool.submit(
                    measure, args.dataset, args.data_dir, train_path, model, args
                ).result()
            log.info("%s: %s", model, measured[model])
    rows = [[
        model,
        f"{r['model_build_s']:.1f}",
        f"{r['normal_ms_per_batch']:.0f}",
        f"{r['normal_epoch_s'] / 60:.1f}",
        f"{r['phase2_ms_per_batch']:.0f}",
        f"{r['phase2_epoch_s'] / 60:.1f}",
        f"{r['phase2_over_normal']:.2f}",
        r["lookahead"],
        f"{r['end_epoch_s']:.1f}",
        f"{r['eval_all_test_users_s'] / 60:.1f}{' (projected)' * r['eval_projected']}",
        f"{r['peak_mib'] / 1024:.1f}",
    ] for model, r in measured.items()]
    header = ["model", "build s", "Normal ms/batch", "Normal epoch min", "Phase II ms/batch",
              "Phase II epoch min", "Phase II / Normal", "look-ahead", "end_epoch s",
              "test evaluation min", "peak GiB"]
    path = write_result(
        f"scale_{args.dataset}",
        {"dataset": args.dataset, "threads": args.threads, "synthetic_train": train,
         "batches_timed": args.batches, "warmup": args.warmup, "models": measured},
        markdown_table(header, rows),
        seeds=[args.seed], wall_time_s=time.perf_counter() - wall,
        title=f"Every stage of a run at {args.dataset}'s full size (synthetic train file)",
        results_dir=args.results_dir,
    )
    print(markdown_table(header, rows))
    return path


if __name__ == "__main__":
    main()
