"""What a model offers Phase II, decided once per wrapper: where its per-sample gradient
factors come from (``SGDLConfig.per_sample_gradients``) and whether look-aheads may move
its final rows through a propagation Gram (``SGDLConfig.lookahead``)."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from sgdl_wrap.config import SGDLConfig
from sgdl_wrap.data.interactions import Interactions
from sgdl_wrap.phase2.features import SupportsGradientFactors
from sgdl_wrap.phase2.gradient_check import recorded_factors_refusal
from sgdl_wrap.phase2.points import SupportsPropagationGram
from sgdl_wrap.phase2.recorded import check_module_coverage
from sgdl_wrap.protocols import PerSampleLoss

__all__ = ["FactorSource", "choose_factor_source", "gram_of"]

log = logging.getLogger(__name__)

# The model's per_sample_factors hook, factors recorded from its modules, or None: the loop.
FactorSource = Literal["hook", "modules"] | None


def choose_factor_source(model: nn.Module, loss: PerSampleLoss, train: Interactions,
                         config: SGDLConfig, device: torch.device) -> FactorSource:
    """Where ``model``'s gradient factors come from under ``config.per_sample_gradients``;
    raises for a model that lacks what the setting asks for (and, for ``lookahead="gram"``,
    a model that offers no Gram)."""
    strategy = config.per_sample_gradients
    has_hook = isinstance(model, SupportsGradientFactors)
    if strategy == "factors" and not has_hook:
        raise TypeError(
            f"per_sample_gradients='factors' needs {type(model).__name__}."
            "per_sample_factors(users, items); use 'loop' or add the hook"
        )
    if strategy == "modules":
        check_module_coverage(model)
    source: FactorSource
    if strategy == "factors" or (strategy == "auto" and has_hook):
        source = "hook"
    elif strategy == "modules" or (strategy == "auto" and _recorded_factors_serve(
            model, loss, train, device)):
        source = "modules"
    else:
        source = None
    if config.lookahead == "gram" and not _gram_capable(model, source):
        raise TypeError(
            f"lookahead='gram' needs {type(model).__name__}.propagation_gram() and the "
            "per-sample gradient factors; use lookahead='functional' or 'auto'"
        )
    return source


def _gram_capable(model: nn.Module, source: FactorSource) -> bool:
    # The Gram look-ahead reads the final rows that only the model's own hook returns.
    return source == "hook" and isinstance(model, SupportsPropagationGram)


def gram_of(model: nn.Module, config: SGDLConfig, source: FactorSource) -> Tensor | None:
    """The model's propagation Gram when look-aheads are taken on its final rows, else
    None."""
    if config.lookahead == "functional" or not _gram_capable(model, source):
        return None
    assert isinstance(model, SupportsPropagationGram)
    gram = model.propagation_gram()
    if gram is None and config.lookahead == "gram":
        raise RuntimeError(
            f"lookahead='gram': {type(model).__name__} offers no propagation Gram "
            f"for its {model.n_users} users and {model.n_items} items; use "
            "lookahead='auto' or 'functional'"
        )
    return gram


def _recorded_factors_serve(model: nn.Module, loss: PerSampleLoss, train: Interactions,
                            device: torch.device) -> bool:
    """Whether factors recorded from the model's modules give the exact loop's cosines
    on a few training rows spread over the data (positives, with other rows' items as
    negatives: no random draw, so the wrapper's streams are untouched); logs why not."""
    rows = np.unique(np.linspace(0, len(train) - 1, num=min(4, len(train))).astype(np.int64))
    columns = 1 + loss.num_negatives
    candidates = train.items[(rows[:, None] + np.arange(columns)) % len(train)]
    refusal = recorded_factors_refusal(
        model, loss, torch.from_numpy(train.users[rows]).to(device),
        torch.from_numpy(candidates).to(device),
    )
    if refusal is not None:
        log.info("per-sample gradients by the exact loop (slow): the factors recorded "
                 "from %s's modules do not serve: %s", type(model).__name__, refusal)
    return refusal is None
