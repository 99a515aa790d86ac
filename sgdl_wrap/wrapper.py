"""``SGDLWrapper``: two-phase self-guided denoising around any model, inside the user's loop.

Usage (the loop, the model and the optimizer stay the user's)::

    sgdl = SGDLWrapper(model, BPRLoss(), train=train)
    for epoch in range(epochs):
        for batch in sgdl.batches(128):
            sgdl.step(batch, optimizer)       # or: loss = sgdl.objective(batch, lookahead_lr=lr)
        report = sgdl.end_epoch()             #     loss.backward(); optimizer.step()

Phase I (:mod:`sgdl_wrap.phase1`) trains plainly and runs the memorization test after every
epoch; once the memorized set reaches the estimated clean share of the data, Phase II
(:mod:`sgdl_wrap.phase2`) starts: each step meta-learns the weighting net through a
functional look-ahead (:mod:`sgdl_wrap.phase2.pipeline`) and returns the re-weighted loss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sgdl_wrap.config import SGDLConfig
from sgdl_wrap.data.batching import Batch, check_batch, draw_batch, iterate_batches
from sgdl_wrap.data.interactions import Interactions
from sgdl_wrap.data.sampling import UniformNegativeSampler
from sgdl_wrap.diagnostics import EpochReport, EpochWeights, epoch_report, warn_if_loss_rises
from sgdl_wrap.legacy import upgrade_wrapper_state
from sgdl_wrap.losses import per_sample_losses
from sgdl_wrap.phase1.noise import NoiseEstimate
from sgdl_wrap.phase1.tracker import MemorizationTracker
from sgdl_wrap.phase2.capabilities import FactorSource, choose_factor_source, gram_of
from sgdl_wrap.phase2.functional import trainable_parameters
from sgdl_wrap.phase2.pipeline import MetaLearner, PhaseTwoStep, build_step
from sgdl_wrap.protocols import PerSampleLoss, Recommender
from sgdl_wrap.training import scaled_learning_rate

__all__ = ["Phase", "SGDLWrapper"]

log = logging.getLogger(__name__)


class Phase(str, Enum):
    MEMORIZATION = "memorization"
    SELF_GUIDED = "self_guided"


class SGDLWrapper:
    """Self-Guided Learning to Denoise around ``model``.

    Args:
        model: an ``nn.Module`` implementing :class:`~sgdl_wrap.protocols.Recommender`.
            Optionally ``per_sample_factors`` (:mod:`sgdl_wrap.phase2.features`) for fast
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
        self.tracker = MemorizationTracker(train, self.config)
        self.phase = Phase.MEMORIZATION
        self.epoch = 0
        self.switch_epoch: int | None = None
        self.memorized_rows: np.ndarray | None = None
        self.reports: list[EpochReport] = []
        # What the last end_epoch measured, per training row (for plots; not in the state).
        self.last_losses: np.ndarray | None = None
        self.last_normalized_losses: np.ndarray | None = None
        self.last_noise_estimate: NoiseEstimate | None = None
        self.meta = MetaLearner(self.config, self._seeded)
        self.epoch_weights = EpochWeights(len(train))
        self._steps = 0
        self.factor_source: FactorSource = choose_factor_source(model, loss, train,
                                                                self.config, self.device)
        self._phase_two: PhaseTwoStep | None = None

    # ----------------------------------------------------------------- public API

    @property
    def per_sample_strategy(self) -> str:
        """How the scheduler's gradient cosines are computed: ``"factors"`` (the model's
        hook), ``"modules"`` (factors recorded from its modules) or ``"loop"``."""
        return {"hook": "factors", "modules": "modules", None: "loop"}[self.factor_source]

    @property
    def lookahead_strategy(self) -> str:
        """How Phase II takes its look-ahead: ``"gram"`` (on the final rows, through the
        model's propagation Gram; :class:`~sgdl_wrap.phase2.points.RowPoints`) or
        ``"functional"``."""
        return "functional" if self._gram() is None else "gram"

    @property
    def memorized(self) -> np.ndarray:
        """``[N]`` bool: memorized now under the bank's rule (frozen set: ``memorized_rows``)."""
        return self.tracker.bank.memorized()

    @property
    def weight_net(self) -> nn.Module:
        """The weighting net ``g(L; psi)`` (:class:`~sgdl_wrap.phase2.weighting.WeightNet`);
        ``meta`` holds it with the scheduler and their optimizers."""
        return self.meta.weight_net

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
        check_batch(batch, len(self.train_data), self.loss_fn.num_negatives)
        if self.phase is Phase.MEMORIZATION:
            return per_sample_losses(self.model, self.loss_fn, batch, where=where).mean()
        if not self.config.denoising:
            losses = per_sample_losses(self.model, self.loss_fn, batch, where=where)
            keep = torch.from_numpy(self._frozen_mask()[batch.rows.cpu().numpy()])
            return (losses * keep.to(losses.device)).sum() / keep.sum().clamp_min(1)
        lr = self.config.lookahead_lr if self.config.lookahead_lr is not None else lookahead_lr
        if lr is None and self.config.weighting == "learned":
            raise ValueError(
                "Phase II needs the look-ahead learning rate: pass lookahead_lr= or set "
                "SGDLConfig(lookahead_lr=...), or use step(batch, optimizer)"
            )
        # Drawn whatever the weighting (the controls draw it too), so that the wrapper's
        # random stream, and every later batch's negatives, is the same for all of them.
        assert self.memorized_rows is not None
        memorized = draw_batch(self.train_data, self.memorized_rows,
                               self.config.memorized_batch_size or len(batch), self.sampler,
                               self.loss_fn.num_negatives, self.rng).to(self.device)
        weighted = self.phase_two(batch, memorized, lr or 0.0, self.epoch, where)
        # A row's recorded weight is its positive's (column 0 when candidates are weighed).
        self.epoch_weights.record(batch.rows.cpu().numpy(),
                                  weighted.weights.reshape(len(batch), -1)[:, 0].cpu().numpy(),
                                  weighted.losses.reshape(len(batch), -1)[:, 0].cpu().numpy())
        return weighted.objective

    def step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        """``objective`` + ``zero_grad`` + ``backward`` + ``optimizer.step()``; returns the loss.

        The look-ahead uses the optimizer's learning rate (first parameter group) unless the
        config sets one; in Phase I the step runs with ``phase1_lr_factor`` times the rate.
        """
        objective = self.objective(batch, lookahead_lr=optimizer.param_groups[0]["lr"])
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if self.phase is Phase.MEMORIZATION:
            with scaled_learning_rate(optimizer, self.config.phase1_lr_factor):
                optimizer.step()
        else:
            optimizer.step()
        return float(objective.detach())

    def end_epoch(self) -> EpochReport:
        """Memorization test, noise-rate estimate, diagnostics and the phase switch."""
        measured = self.tracker.measure(self.model, self.loss_fn, self.sampler, self.rng,
                                        self.device)
        self.last_losses, self.last_normalized_losses = measured.losses, measured.normalized
        self.last_noise_estimate = measured.estimate
        phase = self.phase
        switched = phase is Phase.MEMORIZATION and self.tracker.reached(measured, self.epoch)
        if switched:
            self.start_self_guided(measured.memorized)
        # Only a weighting net that trained this epoch has weights to report.
        weighed = phase is Phase.SELF_GUIDED and self.config.denoising
        report = epoch_report(
            epoch=self.epoch, phase=phase.value, switched=switched,
            memorized=measured.memorized, noise_rate=measured.estimate.rate,
            train_loss=float(measured.losses.mean()), noisy=self.train_data.noisy,
            weights=self.sample_weights() if weighed else None,
        )
        self.reports.append(report)
        log.info("SGDL %s", report)
        if weighed and self.config.weighting != "uniform":
            # Without denoising learning the rows outside the memorized set are not trained
            # on, and under uniform weights there is no weighting net: in neither case does
            # a rising loss say anything about one.
            warn_if_loss_rises(self.reports)
        self.epoch += 1
        self.epoch_weights.clear()
        if self.phase is Phase.SELF_GUIDED and (switched or self.config.reset_each_epoch):
            self.meta.reset()
        return report

    def start_self_guided(self, memorized: np.ndarray | None = None) -> None:
        """Switch to Phase II now with the given (default: currently) memorized rows."""
        mask = self.memorized if memorized is None else np.asarray(memorized, bool)
        if mask.shape != (len(self.train_data),):
            raise ValueError(
                f"memorized mask must have shape ({len(self.train_data)},), got {mask.shape}"
            )
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            bank = self.tracker.bank
            raise RuntimeError(
                f"cannot start Phase II at epoch {self.epoch}: the memorized set is empty "
                f"({bank.filled} epochs of history, rule {bank.rule!r})"
            )
        self.memorized_rows = rows
        self.switch_epoch = self.epoch
        self.phase = Phase.SELF_GUIDED
        self.meta.reset()
        self.phase_two  # noqa: B018 (built now, with the Gram, so that the first step does not wait)
        log.info("SGDL: Phase II from epoch %d with %d memorized rows", self.epoch + 1, rows.size)

    def sample_weights(self) -> np.ndarray:
        """``[N]`` mean learned weight of each row in the current epoch (NaN if unseen)."""
        return self.epoch_weights.weights()

    def sample_losses(self) -> np.ndarray:
        """``[N]`` mean loss of each row as the weighting net saw it (its input) in the current
        epoch (NaN if unseen): the x-axis of weight-against-loss plots."""
        return self.epoch_weights.losses()

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
            "rng": self.rng.bit_generator.state,
            **self.tracker.state_dict(),
            **self.meta.state_dict(),
            **self.epoch_weights.state_dict(),
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
        self.rng.bit_generator.state = state["rng"]
        self.tracker.load_state_dict(state)
        self.meta.load_state_dict(dict(state), self.epoch)
        self.epoch_weights.load_state_dict(state)
        self.reports = [EpochReport(**r) for r in state["reports"]]

    def __getstate__(self) -> dict[str, Any]:
        # The Phase II step is derived from the model and the config; it is built again.
        return {**self.__dict__, "_phase_two": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(upgrade_wrapper_state(state, self._seeded))

    # --------------------------------------------------------------- internals

    @property
    def phase_two(self) -> PhaseTwoStep:
        """The Phase II step, its strategies chosen once (at the switch)."""
        if self._phase_two is None:
            self._phase_two = build_step(self.model, self.loss_fn, self.config, self.meta,
                                         factors=self.factor_source, gram=self._gram())
        return self._phase_two

    def _gram(self) -> Tensor | None:
        return gram_of(self.model, self.config, self.factor_source)

    def _seeded(self, build: Any, salt: int) -> Any:
        # Nets are initialised from a private stream so the user's global RNG is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed * 1_000_003 + salt)
            return build().to(self.device, self.dtype)

    def _frozen_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.train_data), dtype=bool)
        assert self.memorized_rows is not None
        mask[self.memorized_rows] = True
        return mask
