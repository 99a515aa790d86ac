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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.models import BATCH_SIZES, MODELS
from benchmarks.reporting import environment
from sgdl_wrap import UniformNegativeSampler, iterate_batches
from sgdl_wrap.datasets import Dataset
from sgdl_wrap.metrics import evaluate
from sgdl_wrap.training import ModelSelector, train_epoch

__all__ = ["METHODS", "RunConfig", "Trainer", "cached_run", "run", "time_epochs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run (with the dataset's files)."""

    dataset: str
    model: str
    method: str
    seed: int
    epochs: int = 400
    patience: int = 10
    eval_every: int = 1
    batch_size: int | None = None
    lr: float | None = None
    ks: Sequence[int] = (5, 20)
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved_batch_size(self) -> int:
        return self.batch_size or BATCH_SIZES.get(self.dataset, 128)

    def resolved_lr(self) -> float:
        return self.lr or MODELS[self.model].lr


class Trainer:
    """Plain ("Normal") training: the model, its loss, Adam, uniform negatives, all seeded."""

    def __init__(self, data: Dataset, config: RunConfig) -> None:
        spec = MODELS[config.model]
        torch.manual_seed(config.seed)
        self.data, self.config = data, config
        self.rng = np.random.default_rng(config.seed)
        self.device = torch.device(config.device)
        self.model = spec.build(data.train).to(self.device)
        self.loss = spec.make_loss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.resolved_lr())
        self.sampler = UniformNegativeSampler(data.train)

    def batches(self):
        for batch in iterate_batches(self.data.train, self.config.resolved_batch_size(),
                                     self.sampler, self.loss.num_negatives, self.rng):
            yield batch.to(self.device)

    def train_epoch(self, epoch: int) -> float:
        """Train one epoch; returns the mean training loss."""
        self.model.train()
        return train_epoch(self.model, self.loss, self.optimizer, self.batches(), epoch=epoch)


METHODS: dict[str, Callable[[Dataset, RunConfig], Trainer]] = {"normal": Trainer}


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
    trainer = METHODS[config.method](data, config)
    selector = ModelSelector(metric=f"recall@{config.ks[0]}", patience=config.patience)
    epoch_seconds: list[float] = []
    history: list[dict[str, float]] = []
    progress = tqdm(range(config.epochs), desc=f"{config.model}/{config.method}/s{config.seed}",
                    leave=False, dynamic_ncols=True)
    for epoch in progress:
        epoch_start = time.perf_counter()
        mean_loss = trainer.train_epoch(epoch)
        epoch_seconds.append(time.perf_counter() - epoch_start)
        if (epoch + 1) % config.eval_every:
            continue
        valid = evaluate(trainer.model, data.valid, exclude=[data.train], ks=config.ks)
        history.append({"epoch": epoch, "loss": mean_loss, **valid})
        selector.update(epoch, valid, trainer.model)
        progress.set_postfix(loss=f"{mean_loss:.4f}", best=f"{selector.best_value:.4f}")
        log.info("epoch %d loss %.4f valid %s", epoch, mean_loss, valid)
        if selector.should_stop:
            break
    progress.close()
    selector.restore(trainer.model)
    test = evaluate(trainer.model, data.test, exclude=[data.train, data.valid], ks=config.ks)
    return {
        "config": asdict(config),
        "environment": environment(config.device),
        "wall_time_s": time.perf_counter() - start,
        "test": test,
        "valid": selector.best_metrics,
        "best_epoch": selector.best_epoch,
        "epochs_run": len(epoch_seconds),
        "epoch_seconds_mean": float(np.mean(epoch_seconds)),
        "epoch_seconds": [round(s, 4) for s in epoch_seconds],
        "history": history,
    }


def cached_run(data: Dataset, config: RunConfig, cache_dir: Path | None) -> dict[str, Any]:
    """:func:`run`, unless a finished run of the same configuration is in ``cache_dir``.

    A run's file is written atomically when it finishes, so an interrupted sweep resumes
    with the first run that has no file.
    """
    if cache_dir is None:
        return run(data, config)
    key = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / f"{config.dataset}_{config.model}_{config.method}_s{config.seed}_{key}.json"
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
