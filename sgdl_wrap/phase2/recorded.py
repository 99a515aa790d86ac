"""Gradient factors recorded from a model's ``nn.Embedding`` and ``nn.Linear`` modules, for a
model without a ``per_sample_factors`` hook (``SGDLConfig(per_sample_gradients="modules")``).

Forward hooks, as in Opacus, record each module's input and output during an ordinary
``score(users, items)`` call: an embedding's ids and gathered rows become a
:class:`~sgdl_wrap.phase2.features.RowFactor`, a linear layer's input and output a
:class:`~sgdl_wrap.phase2.features.LinearFactor` (and one more for its bias). Every trainable
parameter must belong to such a module, and each module must be called once per ``score``
call, on tensors whose first dimension is the samples (``[B, ...]``, at most one more
dimension before the features). The factors are exact only if sample ``b``'s score depends
on no other sample's module outputs (no batch normalisation, no attention across the
batch); the recorder cannot see that, so check such a model once against the exact loop
with ``sgdl_wrap.phase2.gradient_check.check_gradient_factors(..., source="modules")``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from torch import Tensor, nn

from sgdl_wrap.phase2.features import Factor, LinearFactor, RowFactor
from sgdl_wrap.phase2.functional import call_at, trainable_parameters
from sgdl_wrap.protocols import Recommender

__all__ = ["check_module_coverage", "module_factors"]

_RECORDED = (nn.Embedding, nn.Linear)


def _recorded_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The model's embedding and linear modules that hold a trainable parameter, by name."""
    return {
        name: module for name, module in model.named_modules()
        if isinstance(module, _RECORDED)
        and any(p.requires_grad for p in module.parameters(recurse=False))
    }


def check_module_coverage(model: nn.Module) -> None:
    """Raise unless every trainable parameter is the weight of an ``nn.Embedding`` or the
    weight or bias of an ``nn.Linear``, and no embedding changes its gradient per batch.

    Raises:
        TypeError: naming the parameters no recorded module holds, or the embedding whose
            options make a row's gradient depend on the rest of the batch.
    """
    modules = _recorded_modules(model)
    covered = {
        f"{prefix}.{name}" if prefix else name
        for prefix, module in modules.items()
        for name, _ in module.named_parameters(recurse=False)
    }
    uncovered = sorted(set(trainable_parameters(model)) - covered)
    if uncovered:
        raise TypeError(
            f"per_sample_gradients='modules' needs every trainable parameter of "
            f"{type(model).__name__} in an nn.Embedding or nn.Linear; these are not: "
            f"{uncovered}. Add a per_sample_factors hook or use 'loop'"
        )
    for name, module in modules.items():
        if isinstance(module, nn.Embedding) and (
            module.padding_idx is not None or module.max_norm is not None
            or module.scale_grad_by_freq
        ):
            raise TypeError(
                f"embedding {name!r} uses padding_idx, max_norm or scale_grad_by_freq, whose "
                "gradients the recorded rows do not describe; add a per_sample_factors hook"
            )


def _check_per_sample(name: str, tensor: Tensor, samples: int) -> None:
    if tensor.dim() not in (2, 3) or tensor.shape[0] != samples:
        raise ValueError(
            f"module {name!r} produced {tuple(tensor.shape)}; per_sample_gradients='modules' "
            f"needs [B, d] or [B, C, d] outputs with B = {samples} samples"
        )


@contextmanager
def _recording(modules: Mapping[str, nn.Module]) -> Iterator[dict[str, tuple[Tensor, Tensor]]]:
    """Records ``{module name: (input, output)}`` of each of ``modules``' one call."""
    records: dict[str, tuple[Tensor, Tensor]] = {}
    handles = []

    def hook_for(name: str) -> Any:
        def record(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            if name in records:
                raise RuntimeError(
                    f"module {name!r} was called twice in one score call; "
                    "per_sample_gradients='modules' needs one call per module"
                )
            records[name] = (inputs[0], output)
        return record

    for name, module in modules.items():
        handles.append(module.register_forward_hook(hook_for(name)))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def module_factors(
    model: nn.Module, users: Tensor, items: Tensor, point: Mapping[str, Tensor] | None = None
) -> tuple[Tensor, dict[str, Factor]]:
    """``model.score(users, items)`` (at ``point``, parameters by name, when given) and the
    gradient factor of every trainable parameter, recorded from its module's call.

    Args:
        model: passes :func:`check_module_coverage`.
        users: ``[B]`` user ids.
        items: ``[B]`` or ``[B, C]`` item ids.
        point: parameters to score with instead of the model's own.

    Returns:
        Scores ``[B]`` or ``[B, C]`` and ``{parameter name: factor}``.
    """
    modules = _recorded_modules(model)
    with _recording(modules) as records:
        scores = (cast(Recommender, model).score(users, items) if point is None
                  else call_at(model, "score", point, users, items))
    samples = users.shape[0]
    factors: dict[str, Factor] = {}
    for name, module in modules.items():
        if name not in records:
            raise RuntimeError(
                f"module {name!r} was not called by score; per_sample_gradients='modules' "
                "needs each trainable module called once per score call"
            )
        inputs, output = records[name]
        _check_per_sample(name, output, samples)
        prefix = f"{name}." if name else ""
        if isinstance(module, nn.Embedding):
            factors[f"{prefix}weight"] = RowFactor(output, inputs)
            continue
        _check_per_sample(name, inputs, samples)
        if module.weight.requires_grad:
            factors[f"{prefix}weight"] = LinearFactor(output, inputs)
        if module.bias is not None and module.bias.requires_grad:
            factors[f"{prefix}bias"] = LinearFactor(output)
    return scores, factors
