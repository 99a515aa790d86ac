"""One training run: a model, a method and a seed on a dataset, with model selection."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.models import BATCH_SIZES, MODELS
from sgdl_wrap import UniformNegativeSampler, iterate_batches
from sgdl_wrap.datasets import Dataset
from sgdl_wrap.metrics import evaluate
from sgdl_wrap.training import ModelSelector, train_epoch

__all__ = ["METHODS", "RunConfig", "run"]

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


def _run_normal(data: Dataset, config: RunConfig) -> dict[str, Any]:
    spec = MODELS[config.model]
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = torch.device(config.device)
    model = spec.build(data.train).to(device)
    loss = spec.make_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.resolved_lr())
    sampler = UniformNegativeSampler(data.train)
    selector = ModelSelector(metric=f"recall@{config.ks[0]}", patience=config.patience)
    epoch_seconds: list[float] = []
    history: list[dict[str, float]] = []
    progress = tqdm(range(config.epochs), desc=f"{config.model}/{config.method}/s{config.seed}",
                    leave=False, dynamic_ncols=True)
    for epoch in progress:
        start = time.perf_counter()
        model.train()
        batches = (
            batch.to(device)
            for batch in iterate_batches(
                data.train, config.resolved_batch_size(), sampler, loss.num_negatives, rng
            )
        )
        mean_loss = train_epoch(model, loss, optimizer, batches, epoch=epoch)
        epoch_seconds.append(time.perf_counter() - start)
        if (epoch + 1) % config.eval_every:
            continue
        valid = evaluate(model, data.valid, exclude=[data.train], ks=config.ks)
        history.append({"epoch": epoch, "loss": mean_loss, **valid})
        selector.update(epoch, valid, model)
        progress.set_postfix(loss=f"{mean_loss:.4f}", best=f"{selector.best_value:.4f}")
        log.info("epoch %d loss %.4f valid %s", epoch, mean_loss, valid)
        if selector.should_stop:
            break
    progress.close()
    selector.restore(model)
    test = evaluate(model, data.test, exclude=[data.train, data.valid], ks=config.ks)
    return {
        "test": test,
        "valid": selector.best_metrics,
        "best_epoch": selector.best_epoch,
        "epochs_run": len(epoch_seconds),
        "epoch_seconds_mean": float(np.mean(epoch_seconds)),
        "epoch_seconds": [round(s, 4) for s in epoch_seconds],
        "history": history,
    }


METHODS: dict[str, Callable[[Dataset, RunConfig], dict[str, Any]]] = {"normal": _run_normal}


def run(data: Dataset, config: RunConfig) -> dict[str, Any]:
    """Train and evaluate one configuration; returns metrics, timings and the config."""
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; choose from {sorted(MODELS)}")
    if config.method not in METHODS:
        raise ValueError(f"unknown method {config.method!r}; choose from {sorted(METHODS)}")
    start = time.perf_counter()
    result = METHODS[config.method](data, config)
    return {"config": asdict(config), "wall_time_s": time.perf_counter() - start, **result}
