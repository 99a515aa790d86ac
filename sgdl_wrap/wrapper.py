"""``SGDLWrapper``: two-phase self-guided denoising around any model, inside the user's loop.

Usage (the loop, the model and the optimizer stay the user's)::

    sgdl = SGDLWrapper(model, BPRLoss(), train=train)
    for epoch in range(epochs):
        for batch in sgdl.batches(128):
            sgdl.step(batch, optimizer)       # or: loss = sgdl.objective(batch, lookahead_lr=lr)
        report = sgdl.end_epoch()             #     loss.backward(); optimizer.step()

Phase I trains plainly and runs the memorization test after every epoch; once the memorized
set reaches the estimated clean share of the data, Phase II starts: each step meta-learns the
weighting net through a functional look-ahead and returns the re-weighted loss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from enum import Enum
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sgdl_wrap.batching import Batch, iterate_batches
from sgdl_wrap.config import SGDLConfig
from sgdl_wrap.diagnostics import EpochReport, epoch_report
from sgdl_wrap.gradient_check import recorded_factors_refusal
from sgdl_wrap.gram_lookahead import GramBlock, SupportsPropagationGram
from sgdl_wrap.interactions import Interactions
from sgdl_wrap.lookahead import trainable_parameters
from sgdl_wrap.losses import check_candidate_losses, check_per_sample, per_sample_losses
from sgdl_wrap.memorization import memorization_pass
from sgdl_wrap.memory_bank import MemoryBank
from sgdl_wrap.meta_lookahead import (
    JointForward,
    LookAhead,
    Point,
    ShiftedRows,
    weighted_mean,
)
from sgdl_wrap.module_factors import check_module_coverage
from sgdl_wrap.noise import NoiseEstimate, estimate_noise_rate, normalize_per_user
from sgdl_wrap.per_sample import (
    SupportsGradientFactors,
    factor_cosines,
    loop_cosines,
)
from sgdl_wrap.protocols import PerSampleLoss, Recommender, SupportsCandidateLosses
from sgdl_wrap.sampling import UniformNegativeSampler
from sgdl_wrap.scheduler import DenoisingScheduler, Selection
from sgdl_wrap.weighting import WeightNet

__all__ = ["Phase", "SGDLWrapper"]

log = logging.getLogger(__name__)

# Phase II warns when the unweighted training loss exceeds its value at the switch by this.
_LOSS_RISE_WARNING = 1.1


class Phase(str, Enum):
    MEMORIZATION = "memorization"
    SELF_GUIDED = "self_guided"


class SGDLWrapper:
    """Self-Guided Learning to Denoise around ``model``.

    Args:
        model: an ``nn.Module`` implementing :class:`~sgdl_wrap.protocols.Recommender`.
            Optionally ``per_sample_factors`` (:mod:`sgdl_wrap.per_sample`) for fast
            scheduler features; without it, ``per_sample_gradients="modules"`` records them
            from the model's embedding and linear modules.
        loss: a :class:`~sgdl_wrap.protocols.PerSampleLoss` (``[B, 1 + k]`` -> ``[B]``).
        train: the training interactions; rows index every bookkeeping array.
        config: :class:`SGDLConfig` (defaults: the authors' reference run).
        device: where batches go (default: the model's parameters' device).

    After each :meth:`end_epoch`, ``reports`` holds every epoch's :class:`EpochReport`, and
    ``last_losses`` ``[N]``, ``last_normalized_losses`` ``[N]`` and ``last_noise_estimate``
    what that epoch's memorization pass measured (for plots; not part of the state).
    """

    # A class default, so that a wrapper pickled before the option existed still loads.
    _recorded_factors = False

    def __init__(
        self,
        model: nn.Module,
        loss: PerSampleLoss,
        *,
        train: Interactions,
        config: SGDLConfig | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(model, Recommender):
            raise TypeError(
                f"{type(model).__name__} must define score(users, items), score_all(users), "
                "n_users and n_items"
            )
        if (model.n_users, model.n_items) != (train.n_users, train.n_items):
            raise ValueError(
                f"model id space {model.n_users}x{model.n_items} differs from the training "
                f"data's {train.n_users}x{train.n_items}"
            )
        if not callable(loss) or not isinstance(getattr(loss, "num_negatives", None), int):
            raise TypeError("loss must be callable and have an integer num_negatives")
        if not trainable_parameters(model):
            raise ValueError(f"{type(model).__name__} has no trainable parameters")
        self.model = model
        self.loss_fn = loss
        self.train_data = train
        self.config = config if config is not None else SGDLConfig()
        first = next(model.parameters())
        # The weighting net and the scheduler compute in the model's floating dtype.
        self.dtype = first.dtype
        self.device = torch.device(device) if device is not None else first.device
        self.sampler = UniformNegativeSampler(train)
        self.rng = np.random.default_rng(self.config.seed)
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.bank = MemoryBank(len(train), self.config.history, self.config.threshold_rule)
        self.phase = Phase.MEMORIZATION
        self.epoch = 0
        self.switch_epoch: int | None = None
        self.memorized_rows: np.ndarray | None = None
        self.reports: list[EpochReport] = []
        # What the last end_epoch measured, per training row (for plots; not in the state).
        self.last_losses: np.ndarray | None = None
        self.last_normalized_losses: np.ndarray | None = None
        self.last_noise_estimate: NoiseEstimate | None = None
        self.weight_net = self._seeded(lambda: WeightNet(self.config.weight_hidden), 0)
        self.weight_optimizer: torch.optim.Optimizer | None = None
        self.scheduler: DenoisingScheduler | None = None
        self.scheduler_optimizer: torch.optim.Optimizer | None = None
        self._weight_sum = np.zeros(len(train))
        self._weighed_loss_sum = np.zeros(len(train))
        self._weight_count = np.zeros(len(train), dtype=np.int64)
        self._steps = 0
        strategy = self.config.per_sample_gradients
        has_factors = isinstance(model, SupportsGradientFactors)
        if strategy == "factors" and not has_factors:
            raise TypeError(
                f"per_sample_gradients='factors' needs {type(model).__name__}."
                "per_sample_factors(users, items); use 'loop' or add the hook"
            )
        if strategy == "modules":
            check_module_coverage(model)
        self._recorded_factors = strategy == "modules" or (
            strategy == "auto" and not has_factors and self._recorded_factors_serve()
        )
        self._use_factors = strategy == "factors" or self._recorded_factors or (
            strategy == "auto" and has_factors
        )
        # The Gram look-ahead reads the final rows that only the model's own hook returns.
        gram_capable = (self._use_factors and not self._recorded_factors
                        and isinstance(model, SupportsPropagationGram))
        if self.config.lookahead == "gram" and not gram_capable:
            raise TypeError(
                f"lookahead='gram' needs {type(model).__name__}.propagation_gram() and the "
                "per-sample gradient factors; use lookahead='functional' or 'auto'"
            )
        self._gram_capable = gram_capable and self.config.lookahead != "functional"
        self._candidate_losses = (
            loss.candidate_losses
            if self.config.weight_candidates and isinstance(loss, SupportsCandidateLosses)
            else None
        )

    @cached_property
    def _look_ahead(self) -> LookAhead:
        # Derived, not state: a wrapper pickled before this helper existed (a benchmark
        # checkpoint of older code) still resumes.
        return LookAhead(self.model, self.loss_fn,
                         recorded_factors=self._recorded_factors)

    # ----------------------------------------------------------------- public API

    @property
    def per_sample_strategy(self) -> str:
        """How the scheduler's gradient cosines are computed: ``"factors"`` (the model's
        hook), ``"modules"`` (factors recorded from its modules) or ``"loop"``."""
        if not self._use_factors:
            return "loop"
        return "modules" if self._recorded_factors else "factors"

    @property
    def lookahead_strategy(self) -> str:
        """How Phase II takes its look-ahead: ``"gram"`` (on the final rows, through the
        model's propagation Gram; :mod:`sgdl_wrap.gram_lookahead`) or ``"functional"``."""
        return "functional" if self._gram() is None else "gram"

    @property
    def memorized(self) -> np.ndarray:
        """``[N]`` bool: memorized now under the bank's rule (frozen set: ``memorized_rows``)."""
        return self.bank.memorized()

    def batches(self, batch_size: int, *, shuffle: bool = True) -> Iterator[Batch]:
        """One epoch of training batches with fresh negatives, from the wrapper's own seeded
        generator. In Phase II without denoising learning, only memorized rows."""
        rows = None
        if self.phase is Phase.SELF_GUIDED and not self.config.denoising:
            rows = self.memorized_rows
        for batch in iterate_batches(
            self.train_data, batch_size, self.sampler, self.loss_fn.num_negatives, self.rng,
            rows=rows, shuffle=shuffle,
        ):
            yield batch.to(self.device)

    def objective(self, batch: Batch, *, lookahead_lr: float | None = None) -> Tensor:
        """The scalar to ``backward()`` for this batch.

        Phase I: the mean per-sample loss. Phase II: first the meta step (the weighting net
        and the scheduler are updated here, the model is not touched), then the mean loss
        re-weighted by the updated weighting net, weights detached (eq. 9).

        Args:
            batch: training samples (rows of ``train``).
            lookahead_lr: ``eta_1``; needed in Phase II unless ``config.lookahead_lr`` is set.
        """
        where = f"epoch {self.epoch}, step {self._steps}"
        self._steps += 1
        self._check_batch(batch)
        if self.phase is Phase.MEMORIZATION:
            return per_sample_losses(self.model, self.loss_fn, batch, where=where).mean()
        if not self.config.denoising:
            losses = per_sample_losses(self.model, self.loss_fn, batch, where=where)
            keep = torch.from_numpy(self._frozen_mask()[batch.rows.cpu().numpy()])
            return (losses * keep.to(losses.device)).sum() / keep.sum().clamp_min(1)
        if self.config.weighting != "learned":
            return self._fixed_weighting(batch, where)
        lr = self.config.lookahead_lr if self.config.lookahead_lr is not None else lookahead_lr
        if lr is None:
            raise ValueError(
                "Phase II needs the look-ahead learning rate: pass lookahead_lr= or set "
                "SGDLConfig(lookahead_lr=...), or use step(batch, optimizer)"
            )
        return self._self_guided(batch, lr, where)

    def step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        """``objective`` + ``zero_grad`` + ``backward`` + ``optimizer.step()``; returns the loss.

        The look-ahead uses the optimizer's learning rate (first parameter group) unless the
        config sets one; in Phase I the step runs with ``phase1_lr_factor`` times the rate.
        """
        objective = self.objective(batch, lookahead_lr=optimizer.param_groups[0]["lr"])
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        factor = self.config.phase1_lr_factor if self.phase is Phase.MEMORIZATION else 1.0
        if factor == 1.0:
            optimizer.step()
        else:
            rates = [group["lr"] for group in optimizer.param_groups]
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] * factor
            try:
                optimizer.step()
            finally:
                for group, rate in zip(optimizer.param_groups, rates):
                    group["lr"] = rate
        return float(objective.detach())

    def end_epoch(self) -> EpochReport:
        """Memorization test, noise-rate estimate, diagnostics and the phase switch."""
        config = self.config
        result = memorization_pass(
            self.model, self.loss_fn, self.train_data, self.sampler, self.rng,
            test=config.memorization_test, device=self.device,
        )
        self.bank.record(result.marks)
        memorized = self.bank.memorized()
        normalized = normalize_per_user(result.losses, self.train_data.users,
                                        self.train_data.n_users)
        estimate = estimate_noise_rate(
            normalized, max_iter=config.gmm_max_iter, tol=config.gmm_tol,
            reg_covar=config.gmm_reg_covar, seed=config.seed,
        )
        self.last_losses, self.last_normalized_losses = result.losses, normalized
        self.last_noise_estimate = estimate
        phase = self.phase
        switched = False
        if phase is Phase.MEMORIZATION:
            shifted = min(max(estimate.rate * (1 + config.noise_rate_shift), 0.0), 1.0)
            reached = memorized.sum() >= (1 - shifted) * len(self.train_data)
            forced = config.switch_epoch is not None and self.epoch >= config.switch_epoch
            if reached or forced:
                self.start_self_guided(memorized)
                switched = True
        # Only a weighting net that trained this epoch has weights to report or to warn about.
        weighed = phase is Phase.SELF_GUIDED and config.denoising
        report = epoch_report(
            epoch=self.epoch, phase=phase.value, switched=switched, memorized=memorized,
            noise_rate=estimate.rate, train_loss=float(result.losses.mean()),
            noisy=self.train_data.noisy, weights=self.sample_weights() if weighed else None,
        )
        self.reports.append(report)
        log.info("SGDL %s", report)
        if weighed and config.weighting != "uniform":
            # Without denoising learning the rows outside the memorized set are not trained
            # on, and under uniform weights there is no weighting net: in neither case does
            # a rising loss say anything about one.
            self._warn_if_loss_rises(report)
        self.epoch += 1
        self._weight_sum[:] = 0.0
        self._weighed_loss_sum[:] = 0.0
        self._weight_count[:] = 0
        if self.phase is Phase.SELF_GUIDED and (switched or config.reset_each_epoch):
            self._reset_meta_optimizers()
        return report

    def start_self_guided(self, memorized: np.ndarray | None = None) -> None:
        """Switch to Phase II now with the given (default: currently) memorized rows."""
        mask = self.bank.memorized() if memorized is None else np.asarray(memorized, bool)
        if mask.shape != (len(self.train_data),):
            raise ValueError(
                f"memorized mask must have shape ({len(self.train_data)},), got {mask.shape}"
            )
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            raise RuntimeError(
                f"cannot start Phase II at epoch {self.epoch}: the memorized set is empty "
                f"({self.bank.filled} epochs of history, rule {self.bank.rule!r})"
            )
        self.memorized_rows = rows
        self.switch_epoch = self.epoch
        self.phase = Phase.SELF_GUIDED
        self._reset_meta_optimizers()
        self._gram()  # built now (once), so that Phase II's first step does not pay for it
        log.info("SGDL: Phase II from epoch %d with %d memorized rows", self.epoch + 1, rows.size)

    def sample_weights(self) -> np.ndarray:
        """``[N]`` mean learned weight of each row in the current epoch (NaN if unseen)."""
        return self._epoch_mean(self._weight_sum)

    def sample_losses(self) -> np.ndarray:
        """``[N]`` mean loss of each row as the weighting net saw it (its input) in the current
        epoch (NaN if unseen): the x-axis of weight-against-loss plots."""
        return self._epoch_mean(self._weighed_loss_sum)

    def _epoch_mean(self, total: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self._weight_count > 0, total / self._weight_count, np.nan)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: phase, history, memorized set, nets,
        optimizers and random states (the user's model and optimizer are saved separately)."""
        return {
            "config": self.config.to_dict(),
            "phase": self.phase.value,
            "epoch": self.epoch,
            "steps": self._steps,
            "switch_epoch": self.switch_epoch,
            "memorized_rows": None if self.memorized_rows is None else self.memorized_rows.copy(),
            "bank": self.bank.state_dict(),
            "rng": self.rng.bit_generator.state,
            "generator": self.generator.get_state(),
            "weight_net": self.weight_net.state_dict(),
            "weight_optimizer": _optional_state(self.weight_optimizer),
            "scheduler_cosines": None if self.scheduler is None else self._scheduler_cosines,
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scheduler_optimizer": _optional_state(self.scheduler_optimizer),
            "weight_sum": self._weight_sum.copy(),
            "weighed_loss_sum": self._weighed_loss_sum.copy(),
            "weight_count": self._weight_count.copy(),
            "reports": [r.as_dict() for r in self.reports],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # Through from_dict, so that a state saved before a setting existed loads with its
        # default, the behaviour of the code that saved it.
        if SGDLConfig.from_dict(state["config"]) != self.config:
            raise ValueError("the saved state was made with a different SGDLConfig")
        self.phase = Phase(state["phase"])
        self.epoch = int(state["epoch"])
        self._steps = int(state["steps"])
        self.switch_epoch = state["switch_epoch"]
        rows = state["memorized_rows"]
        self.memorized_rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.bank.load_state_dict(state["bank"])
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])
        self.weight_net.load_state_dict(state["weight_net"])
        self.weight_optimizer = self.scheduler = self.scheduler_optimizer = None
        if state["weight_optimizer"] is not None:
            self._reset_meta_optimizers()
            assert self.weight_optimizer is not None
            self.weight_optimizer.load_state_dict(state["weight_optimizer"])
        if state["scheduler"] is not None:
            self._build_scheduler(int(state["scheduler_cosines"]))
            assert self.scheduler is not None
            self.scheduler.load_state_dict(state["scheduler"])
            if self.scheduler_optimizer is not None:
                self.scheduler_optimizer.load_state_dict(state["scheduler_optimizer"])
        self._weight_sum = np.array(state["weight_sum"], dtype=np.float64)
        self._weighed_loss_sum = np.array(state["weighed_loss_sum"], dtype=np.float64)
        self._weight_count = np.array(state["weight_count"], dtype=np.int64)
        self.reports = [EpochReport(**r) for r in state["reports"]]

    # --------------------------------------------------------------- internals

    def _seeded(self, build: Any, salt: int) -> Any:
        # Nets are initialised from a private stream so the user's global RNG is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed * 1_000_003 + salt)
            return build().to(self.device, self.dtype)

    def _reset_meta_optimizers(self) -> None:
        self.weight_optimizer = _meta_adam(self.weight_net, self.config.meta_lr)
        self.scheduler = None
        self.scheduler_optimizer = None

    def _build_scheduler(self, num_cosines: int) -> None:
        config = self.config
        assert config.scheduler != "none"
        self._scheduler_cosines = num_cosines
        self.scheduler = self._seeded(
            lambda: DenoisingScheduler(config.scheduler, num_cosines,  # type: ignore[arg-type]
                                       hidden=config.scheduler_hidden, tau=config.tau,
                                       sampling=config.sampling),
            1 + self.epoch,
        )
        self.scheduler_optimizer = (
            _meta_adam(self.scheduler, config.scheduler_lr) if self.scheduler.trainable else None
        )

    def _recorded_factors_serve(self) -> bool:
        """Whether factors recorded from the model's modules give the exact loop's cosines
        on a few training rows spread over the data (positives, with other rows' items as
        negatives: no random draw, so the wrapper's streams are untouched); logs why not."""
        train = self.train_data
        rows = np.unique(np.linspace(0, len(train) - 1, num=min(4, len(train))).astype(np.int64))
        columns = 1 + self.loss_fn.num_negatives
        candidates = train.items[(rows[:, None] + np.arange(columns)) % len(train)]
        refusal = recorded_factors_refusal(
            self.model, self.loss_fn,
            torch.from_numpy(train.users[rows]).to(self.device),
            torch.from_numpy(candidates).to(self.device),
        )
        if refusal is not None:
            log.info("per-sample gradients by the exact loop (slow): the factors recorded "
                     "from %s's modules do not serve: %s", type(self.model).__name__, refusal)
        return refusal is None

    def _check_batch(self, batch: Batch) -> None:
        rows = batch.rows
        if rows.dim() != 1 or batch.users.shape != rows.shape or batch.items.shape != rows.shape:
            raise ValueError(
                f"batch rows, users and items must be [B] vectors of one length, got "
                f"{tuple(rows.shape)}, {tuple(batch.users.shape)}, {tuple(batch.items.shape)}"
            )
        if rows.numel() == 0:
            raise ValueError("empty batch")
        low, high = int(rows.min()), int(rows.max())
        if low < 0 or high >= len(self.train_data):
            bad = low if low < 0 else high
            raise ValueError(f"training row {bad} is out of range [0, {len(self.train_data)})")
        if batch.negatives.shape != (len(batch), self.loss_fn.num_negatives):
            raise ValueError(
                f"batch negatives have shape {tuple(batch.negatives.shape)}; the loss expects "
                f"[{len(batch)}, {self.loss_fn.num_negatives}]"
            )

    def _frozen_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.train_data), dtype=bool)
        assert self.memorized_rows is not None
        mask[self.memorized_rows] = True
        return mask

    def _memorized_batch(self, size: int) -> Batch:
        assert self.memorized_rows is not None
        rows = self.rng.choice(self.memorized_rows, size=size, replace=True)
        users = self.train_data.users[rows]
        negatives = self.sampler.sample(users, self.loss_fn.num_negatives, self.rng)
        return Batch(
            rows=torch.from_numpy(rows),
            users=torch.from_numpy(users),
            items=torch.from_numpy(self.train_data.items[rows]),
            negatives=torch.from_numpy(negatives),
        ).to(self.device)

    def _gram(self) -> Tensor | None:
        """The model's propagation Gram when the look-ahead is taken on final rows."""
        if not self._gram_capable:
            return None
        assert isinstance(self.model, SupportsPropagationGram)
        gram = self.model.propagation_gram()
        if gram is None and self.config.lookahead == "gram":
            raise RuntimeError(
                f"lookahead='gram': {type(self.model).__name__} offers no propagation Gram "
                f"for its {self.model.n_users} users and {self.model.n_items} items; use "
                "lookahead='auto' or 'functional'"
            )
        return gram

    def _self_guided(self, batch: Batch, lr: float, where: str) -> Tensor:
        params = trainable_parameters(self.model)
        memorized = self._memorized_batch(self.config.memorized_batch_size or len(batch))
        full_gram = self._gram()
        joint: JointForward | None = None
        gram: GramBlock | None = None
        if full_gram is not None or (self._use_factors and self.config.scheduler != "none"):
            joint = self._look_ahead.joint_forward(batch, memorized, where)
            if full_gram is not None:
                # One gather of K serves every look-ahead (each moves the memorized rows).
                gram = self._look_ahead.gram_block(
                    full_gram, joint,
                    steps_from_memorized=(self.config.scheduler != "none"
                                          and self.config.feature_lookahead == "memorized"),
                )
            scores, losses = joint.scores[: len(batch)], joint.losses[: len(batch)]
        else:
            scores = self.model.score(batch.users, batch.candidates)
            losses = check_per_sample(self.loss_fn(scores), len(batch), where=where)
        if self._candidate_losses is not None:
            losses = check_candidate_losses(self._candidate_losses(scores), scores, where=where)
        weights = self.weight_net(losses)
        theta_hat = self._look_ahead.step_to(
            losses, weights, lr, params=params, gram=gram, joint=joint,
            source=slice(0, len(batch)),
        )
        meta_losses, selection = self._guide(memorized, joint, params, gram, theta_hat, lr, where)
        objective = (
            meta_losses.mean()
            if selection is None
            else (selection.counts * meta_losses).sum() / len(memorized)
        )
        inputs = list(self.weight_net.parameters())
        if self.scheduler is not None and self.scheduler.trainable:
            inputs += list(self.scheduler.parameters())
            if selection is not None and selection.log_prob is not None:
                objective = objective + self.scheduler.reinforce_loss(selection, objective)
        for parameter in inputs:
            parameter.grad = None
        torch.autograd.backward(objective, inputs=inputs, retain_graph=True)
        assert self.weight_optimizer is not None
        self.weight_optimizer.step()
        if self.scheduler_optimizer is not None:
            self.scheduler_optimizer.step()
        with torch.no_grad():
            new_weights = self.weight_net(losses)
        self._record_weights(batch, new_weights, losses)
        return weighted_mean(new_weights, losses)

    def _fixed_weighting(self, batch: Batch, where: str) -> Tensor:
        """Phase II under ``weighting="frozen"`` or ``"uniform"``: the weighted loss without
        a meta step."""
        # Drawn and discarded, so that the wrapper's random stream, and with it every later
        # batch's negatives, follows the learned weighting's; the runs differ in weights only.
        self._memorized_batch(self.config.memorized_batch_size or len(batch))
        scores = self.model.score(batch.users, batch.candidates)
        losses = check_per_sample(self.loss_fn(scores), len(batch), where=where)
        if self._candidate_losses is not None:
            losses = check_candidate_losses(self._candidate_losses(scores), scores, where=where)
        if self.config.weighting == "uniform":
            weights = torch.ones_like(losses)
        else:
            with torch.no_grad():
                weights = self.weight_net(losses)
        self._record_weights(batch, weights, losses)
        return weighted_mean(weights, losses)

    def _record_weights(self, batch: Batch, weights: Tensor, losses: Tensor) -> None:
        rows = batch.rows.cpu().numpy()
        # A row's recorded weight is its positive's (column 0 when candidates are weighed).
        self._weight_sum[rows] += weights.reshape(len(batch), -1)[:, 0].cpu().numpy()
        self._weighed_loss_sum[rows] += losses.detach().reshape(len(batch), -1)[:, 0].cpu().numpy()
        self._weight_count[rows] += 1

    def _guide(
        self,
        memorized: Batch,
        joint: JointForward | None,
        params: dict[str, Tensor],
        gram: GramBlock | None,
        theta_hat: Point,
        lr: float,
        where: str,
    ) -> tuple[Tensor, Selection | None]:
        """Per-sample meta losses at ``theta_hat`` and the scheduler's selection."""
        where = f"the memorized batch of {where}"
        look_ahead = self._look_ahead
        if self.config.scheduler == "none":
            return look_ahead.losses_at(theta_hat, memorized, where), None
        at_batch = self.config.feature_lookahead == "memorized"
        if joint is not None:
            losses = joint.losses[joint.memorized]
        else:
            losses = look_ahead.losses_at(params, memorized, where)
        point = (
            look_ahead.step_to(losses, None, lr, params=params, gram=gram, joint=joint,
                               source=joint.memorized if joint is not None else slice(None),
                               create_graph=False)
            if at_batch else theta_hat
        )
        if joint is not None:
            scores_hat, factors_hat = look_ahead.factors_at(point, memorized)
            losses_hat = check_per_sample(self.loss_fn(scores_hat), len(memorized), where=where)
            cosines = factor_cosines(
                joint.losses, joint.factors, losses_hat, factors_hat, theta_part=joint.memorized,
                grads_at_theta=joint.loss_gradients,
            )
            meta_losses = (
                look_ahead.losses_at(theta_hat, memorized, where) if at_batch else losses_hat
            )
        else:
            assert not isinstance(point, ShiftedRows)
            cosines = loop_cosines(lambda p: look_ahead.losses_at(p, memorized, where), params,
                                   point)
            meta_losses = look_ahead.losses_at(theta_hat, memorized, where)
        if self.scheduler is None:
            self._build_scheduler(cosines.shape[1])
        assert self.scheduler is not None
        selection = self.scheduler.select(losses.detach(), cosines, len(memorized), self.generator)
        return meta_losses, selection

    def _warn_if_loss_rises(self, report: EpochReport) -> None:
        # Measured on ML-100K (benchmarks/results/phase2_dynamics_ml100k.md): the weighting
        # net can learn to ignore high-loss rows, whose loss then grows epoch after epoch
        # while the weighted objective falls, and validation accuracy drops; a 100x smaller
        # meta_lr avoided it there (phase2_dynamics_ml100k_meta-lr-5e-6.md).
        phase_one = [r.train_loss for r in self.reports if r.phase == Phase.MEMORIZATION.value]
        if not phase_one:
            return
        at_switch = phase_one[-1]
        limit = _LOSS_RISE_WARNING * at_switch
        phase_two = [r.train_loss for r in self.reports if r.phase == Phase.SELF_GUIDED.value]
        # Once per crossing, not every epoch above it: a collapsed run can stay above for
        # hundreds of epochs, and each epoch's loss is in its logged report anyway.
        crossed = len(phase_two) < 2 or phase_two[-2] <= limit
        if report.train_loss > limit and crossed:
            log.warning(
                "SGDL epoch %d: the unweighted training loss rose from %.4f at the switch to "
                "%.4f; the weighting net is giving up on high-loss rows (consider a smaller "
                "meta_lr, e.g. 100x, or keep the best checkpoint by validation)",
                report.epoch, at_switch, report.train_loss,
            )


def _meta_adam(net: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam for a small meta net, stepped once per batch: fused (one kernel for all of the
    net's tensors; a third of foreach's time on the CPU for the LSTM scheduler) where this
    torch and device have it, else foreach."""
    params = list(net.parameters())
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=lr, foreach=True)


def _optional_state(optimizer: torch.optim.Optimizer | None) -> dict[str, Any] | None:
    return None if optimizer is None else optimizer.state_dict()
