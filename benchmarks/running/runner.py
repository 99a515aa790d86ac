"""One training run: a model, a method and a seed on a dataset, with model selection.

A *method* is a :class:`Trainer` that knows how to train one epoch; :func:`run` owns the
benchmark's epoch loop (validation, early stopping, best checkpoint, test), the way a user's
own script would. Runs are cached by configuration when they finish and checkpointed after
every epoch until then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from sgdl_wrap.benchmarks.reports.reporting import atomic_write, environment
from sgdl_wrap.benchmarks.running.checkpoint import load_checkpoint, save_checkpoint
from sgdl_wrap.benchmarks.running.methods import METHODS
from sgdl_wrap.benchmarks.running.models import MODELS
from sgdl_wrap.benchmarks.running.run_claim import run_claim
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.trainers import Trainer
from sgdl_wrap.data.datasets import Dataset
from sgdl_wrap.metrics import evaluate
from sgdl_wrap.training import ModelSelector

__all__ = [
    "CachedRun", "RunProgress", "cached_runs", "checkpoint_path", "effective_extra", "run",
    "read_result", "run_path", "time_epochs", "try_cached_run",
]

log = logging.getLogger(__name__)


def _check(config: RunConfig) -> None:
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; choose from {sorted(MODELS)}")
    if config.method not in METHODS:
        raise ValueError(f"unknown method {config.method!r}; choose from {sorted(METHODS)}")


@dataclass
class _RunState:
    """What a run needs to continue after its last finished epoch (see :mod:`.checkpoint`)."""

    config: RunConfig
    environment: dict[str, Any]
    trainer: Trainer
    selector: ModelSelector
    next_epoch: int = 0
    elapsed_s: float = 0.0
    restart: bool = False
    epoch_seconds: list[float] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    resumed: list[dict[str, Any]] = field(default_factory=list)
    torch_rng: torch.Tensor | None = None
    cuda_rng: list[torch.Tensor] | None = None


def _resume(data: Dataset, config: RunConfig, checkpoint: Path) -> _RunState:
    try:
        state = load_checkpoint(checkpoint, data)
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError) as error:
        # E.g. a class of the checkpoint changed shape since it was written.
        raise RuntimeError(
            f"cannot resume from {checkpoint} ({type(error).__name__}: {error}); delete it "
            "to train this run from the start"
        ) from error
    if not isinstance(state, _RunState) or state.config != config:
        raise ValueError(f"checkpoint {checkpoint} does not hold a run of {config}; delete it "
                         "to train this run from the start")
    assert state.torch_rng is not None
    torch.set_rng_state(state.torch_rng)
    if state.cuda_rng is not None:
        torch.cuda.set_rng_state_all(state.cuda_rng)
    # The code may have changed in between; each resume records what it ran.
    state.resumed.append({"epoch": state.next_epoch,
                          "git_commit": environment(config.device)["git_commit"]})
    log.info("resuming %s at epoch %d", checkpoint.name, state.next_epoch)
    return state


def run(data: Dataset, config: RunConfig, checkpoint: Path | None = None) -> dict[str, Any]:
    """Train with validation every ``eval_every`` epochs and early stopping, then test the
    best checkpoint; returns metrics, timings, the per-validation history and the config.

    With ``checkpoint``, the run's state is saved there after every epoch, and a run that
    finds a checkpoint continues from it, giving the result an uninterrupted run gives.
    """
    _check(config)
    start = time.perf_counter()
    if checkpoint is not None and checkpoint.exists():
        state = _resume(data, config, checkpoint)
    else:
        # Captured first: the code that runs is the code checked out now.
        env = environment(config.device)
        state = _RunState(
            config, env, METHODS[config.method](data, config),
            ModelSelector(metric=f"recall@{config.ks[0]}", patience=config.patience),
        )
    trainer, selector = state.trainer, state.selector
    progress = tqdm(range(state.next_epoch, config.epochs), initial=state.next_epoch,
                    total=config.epochs, desc=f"{config.model}/{config.method}/s{config.seed}",
                    leave=False, dynamic_ncols=True)
    for epoch in progress:
        epoch_start = time.perf_counter()
        mean_loss = trainer.train_epoch(epoch)
        state.epoch_seconds.append(time.perf_counter() - epoch_start)
        state.next_epoch = epoch + 1
        # Patience restarts after the first validation of the new regime.
        state.restart = state.restart or trainer.regime_changed
        if (epoch + 1) % config.eval_every == 0 and trainer.validates:
            valid = evaluate(trainer.recommender, data.valid, exclude=[data.train],
                             ks=config.ks)
            state.history.append({"epoch": epoch, "loss": mean_loss, **valid})
            selector.update(epoch, valid, trainer.model)
            if state.restart:
                selector.restart_patience()
                state.restart = False
            progress.set_postfix(loss=f"{mean_loss:.4f}", best=f"{selector.best_value:.4f}")
            log.info("epoch %d loss %.4f valid %s", epoch, mean_loss, valid)
            if selector.should_stop and trainer.may_stop:
                break
        if checkpoint is not None and state.next_epoch < config.epochs:
            now = time.perf_counter()
            state.elapsed_s, start = state.elapsed_s + now - start, now
            # Dropout draws from the global generators (on a GPU, the CUDA ones).
            state.torch_rng = torch.get_rng_state()
            if torch.cuda.is_initialized():
                state.cuda_rng = torch.cuda.get_rng_state_all()
            save_checkpoint(checkpoint, state, data)
    progress.close()
    selector.restore(trainer.model)
    test = evaluate(trainer.recommender, data.test, exclude=[data.train, data.valid], ks=config.ks)
    return {
        "config": asdict(config),
        "environment": state.environment,
        "wall_time_s": state.elapsed_s + time.perf_counter() - start,
        "test": test,
        "valid": selector.best_metrics,
        "best_epoch": selector.best_epoch,
        "epochs_run": len(state.epoch_seconds),
        "epoch_seconds_mean": float(np.mean(state.epoch_seconds)),
        "epoch_seconds": [round(s, 4) for s in state.epoch_seconds],
        "history": state.history,
        **({"resumed": state.resumed} if state.resumed else {}),
        **trainer.diagnostics(),
    }


def effective_extra(config: RunConfig) -> dict[str, Any]:
    """``config.extra`` without the entries that only restate the method's default (SGDL's
    ``meta_lr=5e-4``), so that both spellings of one run share its cache entry."""
    _check(config)
    settings_for = METHODS[config.method].settings_for
    settings = settings_for(config.extra, config.seed)

    def restates_default(key: str) -> bool:
        rest = {k: v for k, v in config.extra.items() if k != key}
        try:
            return bool(settings_for(rest, config.seed) == settings)
        except ValueError:  # the other settings are invalid without this one: it matters
            return False

    return {key: value for key, value in config.extra.items() if not restates_default(key)}


def run_path(cache_dir: Path, config: RunConfig) -> Path:
    """Where :func:`cached_runs` keeps the result of ``config``."""
    keyed = dict(asdict(config), extra=effective_extra(config))
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / f"{config.dataset}_{config.model}_{config.method}_s{config.seed}_{key}.json"


def checkpoint_path(cache_dir: Path, config: RunConfig) -> Path:
    """Where :func:`cached_runs` keeps the checkpoint of ``config``'s unfinished run."""
    return run_path(cache_dir, config).with_suffix(".partial")


class CachedRun(NamedTuple):
    """A run's result, and whether this process trained it (else it was read)."""

    result: dict[str, Any]
    trained: bool


class RunProgress:
    """What :func:`cached_runs` reports as it goes; these defaults report nothing."""

    def starting(self, config: RunConfig) -> None:
        """Before each attempt at ``config``'s run."""

    def finished(self, config: RunConfig, outcome: CachedRun) -> None:
        """After ``config``'s run was trained here or read."""

    def waiting(self, runs: int) -> None:
        """Before a pause for ``runs`` runs that other processes are training."""


def cached_runs(
    data: Dataset,
    configs: Sequence[RunConfig],
    cache_dir: Path | None,
    *,
    poll_s: float = 30.0,
    progress: RunProgress | None = None,
) -> list[dict[str, Any]]:
    """The results of ``configs``, in their order: :func:`run` for each, unless a finished
    run of the same configuration is in ``cache_dir``.

    A run's file is written atomically when it finishes; until then the run keeps a
    checkpoint beside it (``.partial``, removed at the end), so an interrupted sweep skips the
    finished runs and continues the interrupted one after its last finished epoch. A run
    another process is training (:mod:`.run_claim`: the same command started twice on one
    cache) is passed over and read once it finishes, looking every ``poll_s`` seconds, so
    that every process trains all the time. ``progress`` is told of every attempt, result
    and pause (with a cache only).
    """
    if cache_dir is None:
        return [run(data, config) for config in configs]
    progress = progress if progress is not None else RunProgress()
    results: dict[int, dict[str, Any]] = {}
    pending = list(range(len(configs)))
    while pending:
        elsewhere = []
        for index in pending:
            config = configs[index]
            progress.starting(config)
            outcome = try_cached_run(data, config, cache_dir)
            if outcome is None:
                elsewhere.append(index)
                continue
            results[index] = outcome.result
            progress.finished(config, outcome)
        if elsewhere:
            log.info("waiting for %d run(s) that other processes are training", len(elsewhere))
            progress.waiting(len(elsewhere))
            time.sleep(poll_s)
        pending = elsewhere
    return [results[index] for index in range(len(configs))]


def try_cached_run(data: Dataset, config: RunConfig, cache_dir: Path) -> CachedRun | None:
    """The cached result of ``config``, else the result of training it here (see
    :func:`cached_runs`), else None when another process is training it."""
    path = run_path(cache_dir, config)
    if path.exists():
        log.info("cached: %s", path.name)
        return CachedRun(read_result(path), trained=False)
    with run_claim(path) as claimed:
        if not claimed:
            return None
        if path.exists():  # finished by another process between the check and the claim
            return CachedRun(read_result(path), trained=False)
        log.info("training: %s", path.name)
        checkpoint = checkpoint_path(cache_dir, config)
        result = run(data, config, checkpoint)
        atomic_write(path, json.dumps(result))
        checkpoint.unlink(missing_ok=True)
        return CachedRun(result, trained=True)


def read_result(path: Path) -> dict[str, Any]:
    """The result a finished run left at ``path`` (see :func:`run_path`)."""
    return json.loads(path.read_text())


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
