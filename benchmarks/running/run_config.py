"""The full configuration of one benchmark run (its hash keys the run cache)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sgdl_wrap.benchmarks.running.models import BATCH_SIZES, MODELS

__all__ = ["RunConfig", "parse_setting"]


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


def parse_setting(text: str) -> tuple[str, Any]:
    """One ``RunConfig.extra`` entry from the command line: ``key=value`` with a JSON value
    (``5``, ``0.1``, ``true``, ``null``) or a bare string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value
