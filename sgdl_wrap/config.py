"""SGDL's settings, validated on construction; an unknown key is an error, never ignored.

Where the paper and the authors' code differ, both are available and the default follows the
authors' reference run (ML-100K, LightGCN), the one configuration whose outcome is published
in full (test R@20 0.3410): see each field.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, TypeVar

__all__ = ["SGDLConfig", "settings_from_dict"]

SettingsT = TypeVar("SettingsT")


def settings_from_dict(cls: type[SettingsT], values: Mapping[str, Any], what: str) -> SettingsT:
    """The settings dataclass ``cls`` built from ``values``; a key that is not one of its
    fields raises a ``KeyError`` that starts ``unknown {what} 'key'`` and names the closest
    valid keys."""
    known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f"did you mean {close}?" if close else f"valid keys: {known or 'none'}"
            raise KeyError(f"unknown {what} {key!r}; {hint}")
    return cls(**values)


_CHOICES: dict[str, tuple[Any, ...]] = {
    "threshold_rule": ("paper", "authors"),
    "memorization_test": ("sampled", "full"),
    "scheduler": ("lstm", "mlp", "top_f", "none"),
    "sampling": ("gumbel", "reinforce"),
    "feature_lookahead": ("training", "memorized"),
    "per_sample_gradients": ("auto", "factors", "modules", "loop"),
    "lookahead": ("auto", "gram", "functional"),
    "weighting": ("learned", "frozen", "uniform"),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _require(
    config: Any, name: str, kind: Callable[[Any], bool], valid: Callable[[Any], bool],
    expected: str, *, optional: bool = False,
) -> None:
    value = getattr(config, name)
    if optional and value is None:
        return
    if not (kind(value) and valid(value)):
        raise ValueError(f"{name} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class SGDLConfig:
    """All SGDL settings.

    Phase I (memorization):
        history: ``h``, epochs of memorization marks kept (paper tunes 2, 5, 10, 20).
        threshold_rule: ``"authors"`` (count ``>= h/2``, unfilled slots count 0) or
            ``"paper"`` (mean over the filled slots ``> 0.5``).
        memorization_test: ``"sampled"`` (authors: positives + as many sampled negatives) or
            ``"full"`` (paper: ranking over all items).
        noise_rate_shift: moves the memorization point (Table 4): the switch happens when
            ``|M| >= (1 - sigma * (1 + shift)) |D|``; e.g. ``0.1`` switches earlier.
        switch_epoch: switch to Phase II after this epoch regardless of the estimate.
        phase1_lr_factor: learning-rate factor applied in Phase I by :meth:`SGDLWrapper.step`
            (authors: 1/5, i.e. Phase II's rate is 5x Phase I's).
        gmm_max_iter, gmm_tol, gmm_reg_covar: the noise-rate mixture (authors' settings).

    Phase II (self-guided learning):
        lookahead_lr: ``eta_1`` of the assumed SGD update; None uses the learning rate of
            the optimizer passed to ``step`` (paper: ``eta_1 = eta_2``).
        meta_lr: Adam learning rate of the weighting net (``eta_2``).
        weight_hidden: hidden units of the weighting net (paper 64, authors 100).
        weight_candidates: with a pointwise loss that has ``candidate_losses`` (BCE), give
            the positive and each sampled negative its own weight, each being a sample
            ``(u, i, y)`` of the paper's pointwise setting; False weighs each row's summed
            loss. A pairwise loss (BPR) always has one weight per row: its pair is the sample.
        memorized_batch_size: memorized samples drawn per step (None: the training batch size).
        weighting: how Phase II weighs the training samples. ``"learned"`` (the paper):
            the weighting net is meta-learned through the look-ahead. ``"frozen"``: the
            weighting net keeps its initialisation and no meta step is taken. This is the
            first published release of the authors' code, whose look-ahead cut the
            meta-gradient. ``"uniform"``: every weight is 1. This is Normal training under
            SGDL's schedule (Phase I factor, switch, memorized-batch draws). The two
            controls differ from ``"learned"`` only in the weights.
        denoising: False gives ``w/o DLS`` (Table 3): Phase II trains on memorized data only.
        scheduler: ``"lstm"`` (paper), ``"mlp"``, ``"top_f"`` (Table 5), or ``"none"`` for
            ``w/o ADS`` (all drawn memorized samples, uniformly).
        scheduler_hidden: scorer hidden size (authors' LSTM: 10).
        scheduler_lr: Adam learning rate of the scheduler.
        tau: Gumbel-softmax temperature (paper 0.05, authors' run 1.0).
        sampling: ``"gumbel"`` (straight-through) or ``"reinforce"``.
        reset_each_epoch: re-create the scheduler and the optimizers of the scheduler and of
            the weighting net at every Phase II epoch (authors) instead of keeping them.
        feature_lookahead: where the scheduler's gradient cosines are taken: at the
            look-ahead of the training batch (``"training"``, eq. 7 read literally; no extra
            backward) or at a look-ahead on the memorized batch itself (``"memorized"``,
            authors).
        per_sample_gradients: ``"factors"`` (the model's ``per_sample_factors`` hook; exact
            for gathered embeddings and linear layers), ``"modules"`` (the same factors
            recorded from the model's ``nn.Embedding`` and ``nn.Linear`` modules, for a
            model without the hook whose parameters all live in such modules;
            :mod:`sgdl_wrap.phase2.recorded`), ``"loop"`` (one backward per sample, exact,
            slow) or ``"auto"`` (the hook when the model has one, else the recorded factors
            when they give the loop's cosines on a few training rows, else the loop).
        lookahead: ``"functional"`` (the model evaluated at the stepped parameters),
            ``"gram"`` (the final rows moved through the model's ``propagation_gram``, for
            linear propagation models such as LightGCN: same result, no propagation; needs
            the gradient factors) or ``"auto"`` (gram when the model offers one).
        seed: seeds the wrapper's own randomness (memorized-batch draws, negatives of the
            memorization test, Gumbel noise, mixture fitting).
    """

    history: int = 10
    threshold_rule: Literal["paper", "authors"] = "authors"
    memorization_test: Literal["sampled", "full"] = "sampled"
    noise_rate_shift: float = 0.0
    switch_epoch: int | None = None
    phase1_lr_factor: float = 0.2
    gmm_max_iter: int = 100
    gmm_tol: float = 1e-2
    gmm_reg_covar: float = 5e-4
    lookahead_lr: float | None = None
    meta_lr: float = 5e-4
    weight_hidden: int = 100
    weight_candidates: bool = False
    memorized_batch_size: int | None = None
    weighting: Literal["learned", "frozen", "uniform"] = "learned"
    denoising: bool = True
    scheduler: Literal["lstm", "mlp", "top_f", "none"] = "lstm"
    scheduler_hidden: int = 10
    scheduler_lr: float = 5e-3
    tau: float = 1.0
    sampling: Literal["gumbel", "reinforce"] = "gumbel"
    reset_each_epoch: bool = True
    feature_lookahead: Literal["training", "memorized"] = "training"
    per_sample_gradients: Literal["auto", "factors", "modules", "loop"] = "auto"
    lookahead: Literal["auto", "gram", "functional"] = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
        for name in ("history", "weight_hidden", "scheduler_hidden", "gmm_max_iter"):
            _require(self, name, _is_int, lambda v: v > 0, "a positive integer")
        _require(self, "memorized_batch_size", _is_int, lambda v: v > 0,
                 "a positive integer or None", optional=True)
        _require(self, "switch_epoch", _is_int, lambda v: v >= 0,
                 "a non-negative integer or None", optional=True)
        _require(self, "seed", _is_int, lambda v: v >= 0, "a non-negative integer")
        for name in ("meta_lr", "scheduler_lr", "tau", "phase1_lr_factor", "gmm_tol",
                     "gmm_reg_covar"):
            _require(self, name, _is_number, lambda v: 0 < v < math.inf, "a positive number")
        _require(self, "lookahead_lr", _is_number, lambda v: 0 < v < math.inf,
                 "a positive number or None", optional=True)
        _require(self, "noise_rate_shift", _is_number, lambda v: -1.0 < v < 1.0,
                 "a number in (-1, 1)")
        for name in ("weight_candidates", "denoising", "reset_each_epoch"):
            _require(self, name, lambda v: isinstance(v, bool), lambda v: True, "True or False")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SGDLConfig:
        """Build from a mapping; an unknown key raises, naming the closest valid keys."""
        return settings_from_dict(cls, values, "SGDL config key")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
