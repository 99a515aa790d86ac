"""One training run: a model, a method and a seed on a dataset, with model selection.

A *method* is a :class:`Trainer` that knows how to train one epoch; :func:`run` owns the
benchmark's epoch loop (validation, early stopping, best checkpoint, test), the way a user's
own script would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.methods import METHODS
from benchmarks.models import MODELS
from benchmarks.reporting import environment
from benchmarks.run_config import RunConfig
from sgdl_wrap.datasets import Dataset
from sgdl_wrap.metrics import evaluate
from sgdl_wrap.training import ModelSelector

__all__ = ["cached_run", "run", "run_path", "time_epochs"]

log = logging.getLogger(__name__)


def _check(config: RunConfig) -> None:
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; choose from {sorted(MODELS)}")
    if config.method not in METHODS:
        raise ValueError(f"unknown method {config.method!r}; choose from {sorted(METHODS)}")


def run(data: Dataset, config: RunConfig) -> dict[str, Any]:
    """Train with validation every ``eval_every`` epochs and early stopping, then test the
    best checkpoint; returns metrics, timings, the per-validation history and the config."""
    _check(config)
    start = time.perf_counter()
    # Captured first: the code that runs is the code checked out now.
    env = environment(config.device)
    trainer = METHODS[config.method](data, config)
    selector = ModelSelector(metric=f"recall@{config.ks[0]}", patience=config.patience)
    epoch_seconds: list[float] = []
    history: list[dict[str, float]] = []
    progress = tqdm(range(config.epochs), desc=f"{config.model}/{config.method}/s{config.seed}",
                    leave=False, dynamic_ncols=True)
    restart = False
    for epoch in progress:
        epoch_start = time.perf_counter()
        mean_loss = trainer.train_epoch(epoch)
        epoch_seconds.append(time.perf_counter() - epoch_start)
        # Patience restarts after the first validation of the new regime.
        restart = restart or trainer.regime_changed
        if (epoch + 1) % config.eval_every:
            continue
        valid = evaluate(trainer.recommender, data.valid, exclude=[data.train], ks=config.ks)
        history.append({"epoch": epoch, "loss": mean_loss, **valid})
        selector.update(epoch, valid, trainer.model)
        if restart:
            selector.restart_patience()
            restart = False
        progress.set_postfix(loss=f"{mean_loss:.4f}", best=f"{selector.best_value:.4f}")
        log.info("epoch %d loss %.4f valid %s", epoch, mean_loss, valid)
        if selector.should_stop and trainer.may_stop:
            break
    progress.close()
    selector.restore(trainer.model)
    test = evaluate(trainer.recommender, data.test, exclude=[data.train, data.valid], ks=config.ks)
    return {
        "config": asdict(config),
        "environment": env,
        "wall_time_s": time.perf_counter() - start,
        "test": test,
        "valid": selector.best_metrics,
        "best_epoch": selector.best_epoch,
        "epochs_run": len(epoch_seconds),
        "epoch_seconds_mean": float(np.mean(epoch_seconds)),
        "epoch_seconds": [round(s, 4) for s in epoch_seconds],
        "history": history,
        **trainer.diagnostics(),
    }


def run_path(cache_dir: Path, config: RunConfig) -> Path:
    """Where :func:`cached_run` keeps the result of ``config``."""
    key = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / f"{config.dataset}_{config.model}_{config.method}_s{config.seed}_{key}.json"


def cached_run(data: Dataset, config: RunConfig, cache_dir: Path | None) -> dict[str, Any]:
    """:func:`run`, unless a finished run of the same configuration is in ``cache_dir``.

    A run's file is written atomically when it finishes, so an interrupted sweep resumes
    with the first run that has no file.
    """
    if cache_dir is None:
        return run(data, config)
    path = run_path(cache_dir, config)
    if path.exists():
        log.info("cached: %s", path.name)
        return json.loads(path.read_text())
    result = run(data, config)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=cache_dir, suffix=".tmp", delete=False) as tmp:
        json.dump(result, tmp)
    os.replace(tmp.name, path)
    return result


def time_epochs(data: Dataset, config: RunConfig) -> dict[str, Any]:
    """Wall time of ``config.epochs`` training epochs, the first one discarded as warm-up."""
    _check(config)
    trainer = METHODS[config.method](data, config)
    seconds = []
    for epoch in range(config.epochs):
        start = time.perf_counter()
        trainer.train_epoch(epoch)
        seconds.append(time.perf_counter() - start)
    timed = seconds[1:] or seconds
    batches = -(-len(data.train) // config.resolved_batch_size())
    median = float(np.median(timed))
    return {"epoch_s": [round(s, 4) for s in timed], "epoch_s_median": median,
            "batches": batches, "batch_ms_median": 1000 * median / batches}
