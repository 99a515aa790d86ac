"""Every training method the benchmarks know, by the name used on the command line."""

from __future__ import annotations

from sgdl_wrap.benchmarks.baselines.deca import DeCATrainer
from sgdl_wrap.benchmarks.baselines.pointwise import RCETrainer, TCETrainer
from sgdl_wrap.benchmarks.baselines.relabel import IRTrainer
from sgdl_wrap.benchmarks.baselines.sgcn import SGCNTrainer
from sgdl_wrap.benchmarks.baselines.sgl import SGLTrainer
from sgdl_wrap.benchmarks.baselines.wbpr import WBPRTrainer
from sgdl_wrap.benchmarks.running.trainers import (
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
