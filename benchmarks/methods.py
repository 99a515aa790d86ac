"""Every training method the benchmarks know, by the name used on the command line."""

from __future__ import annotations

from benchmarks.baselines.deca import DeCATrainer
from benchmarks.baselines.pointwise import RCETrainer, TCETrainer
from benchmarks.baselines.relabel import IRTrainer
from benchmarks.baselines.sgcn import SGCNTrainer
from benchmarks.baselines.sgl import SGLTrainer
from benchmarks.baselines.wbpr import WBPRTrainer
from benchmarks.trainers import (
    FrozenSGDLTrainer,
    MatchedNormalTrainer,
    PublishedSGDLTrainer,
    SGDLTrainer,
    Trainer,
)

__all__ = ["GRAPH_ONLY", "METHODS", "POINTWISE_ONLY"]

METHODS: dict[str, type[Trainer]] = {
    "normal": Trainer,
    "sgdl": SGDLTrainer,
    "normal-matched": MatchedNormalTrainer,
    "sgdl-frozen": FrozenSGDLTrainer,
    "sgdl-as-published": PublishedSGDLTrainer,
    "tce": TCETrainer,
    "rce": RCETrainer,
    "deca": DeCATrainer,
    "wbpr": WBPRTrainer,
    "ir": IRTrainer,
    "sgcn": SGCNTrainer,
    "sgl": SGLTrainer,
}

# Methods that apply to some models only (the others raise a clear error).
GRAPH_ONLY = frozenset({"sgcn", "sgl"})
POINTWISE_ONLY = frozenset({"tce", "rce"})
