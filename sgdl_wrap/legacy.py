"""Reading what earlier versions of this package saved: pickles that name modules since
moved (a benchmark run's checkpoint pickles its whole trainer) and wrappers pickled before
Phase II became one pipeline (``phase2/pipeline.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sgdl_wrap.diagnostics import EpochWeights
from sgdl_wrap.phase1.tracker import MemorizationTracker
from sgdl_wrap.phase2.pipeline import MetaLearner

__all__ = ["moved_module", "upgrade_wrapper_state"]

# Old module -> the module that holds its classes now.
_MOVED = {
    f"sgdl_wrap.{old}": f"sgdl_wrap.{new}"
    for old, new in (
        ("memorization", "phase1.memorization"),
        ("memory_bank", "phase1.memory_bank"),
        ("noise", "phase1.noise"),
        ("weighting", "phase2.weighting"),
        ("scheduler", "phase2.scheduler"),
        ("per_sample", "phase2.features"),
        ("interactions", "data.interactions"),
        ("batching", "data.batching"),
        ("sampling", "data.sampling"),
        ("meta_lookahead", "legacy"),
    )
} | {
    f"benchmarks.{module}": f"sgdl_wrap.benchmarks.{folder}.{module}"
    for folder, modules in (
        ("running", ("run_config", "runner", "run_claim", "checkpoint", "trainers", "methods",
                     "models", "data")),
        ("reports", ("reporting", "paper", "significance", "figures", "figure_data")),
    )
    for module in modules
}
# Old package -> its place now (its modules follow it).
_MOVED_PACKAGES = {
    "sgdl_wrap.datasets": "sgdl_wrap.data.datasets",
    "adapters": "sgdl_wrap.adapters",
    "benchmarks.baselines": "sgdl_wrap.benchmarks.baselines",
}


class LookAhead:
    """What a wrapper once cached of its model and loss (``sgdl_wrap.meta_lookahead``);
    loaded from an old pickle only to be dropped."""


def moved_module(module: str) -> str:
    """Where the classes a pickle finds in ``module`` live now."""
    if module in _MOVED:
        return _MOVED[module]
    for old, new in _MOVED_PACKAGES.items():
        if module == old or module.startswith(old + "."):
            return new + module[len(old):]
    return module


def upgrade_wrapper_state(state: dict[str, Any],
                          seeded: Callable[[Callable[[], Any], int], Any]) -> dict[str, Any]:
    """The ``__dict__`` of an ``SGDLWrapper`` pickled by an earlier version, in this
    version's layout (unchanged when it already is); ``seeded`` is the wrapper's own."""
    if "meta" in state:
        return state
    state = dict(state)
    meta = MetaLearner.__new__(MetaLearner)
    meta.__dict__.update(
        config=state["config"], seeded=seeded, weight_net=state.pop("weight_net"),
        weight_optimizer=state.pop("weight_optimizer"), scheduler=state.pop("scheduler"),
        scheduler_optimizer=state.pop("scheduler_optimizer"),
        scheduler_cosines=state.pop("_scheduler_cosines", 0),
        generator=state.pop("generator"),
    )
    tracker = MemorizationTracker.__new__(MemorizationTracker)
    tracker.__dict__.update(train=state["train_data"], config=state["config"],
                            bank=state.pop("bank"))
    weights = EpochWeights.__new__(EpochWeights)
    weights.__dict__.update(weight_sum=state.pop("_weight_sum"),
                            loss_sum=state.pop("_weighed_loss_sum"),
                            count=state.pop("_weight_count"))
    recorded, factors = state.pop("_recorded_factors", False), state.pop("_use_factors")
    for derived in ("_gram_capable", "_candidate_losses", "_look_ahead"):
        state.pop(derived, None)
    state.update(meta=meta, tracker=tracker, epoch_weights=weights, _phase_two=None,
                 factor_source="modules" if recorded else "hook" if factors else None)
    return state
