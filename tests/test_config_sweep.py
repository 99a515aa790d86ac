"""Every ``SGDLConfig`` field at a value other than its default changes what its docstring
says it changes. A test named ``test_field_<name>_...`` exists for every field (the last
test checks this), so a new setting cannot go untested."""

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

import sgdl_wrap.phase1.tracker as tracker_module
from oracles import (
    FixedNegatives,
    batch_of,
    detached_parameters,
    gradient_cosines,
    losses_at,
    meta_gradient,
)
from sgdl_wrap import SGDLConfig, SGDLWrapper
from sgdl_wrap.adapters import LightGCN
from sgdl_wrap.adapters.losses import BCELoss, BPRLoss
from sgdl_wrap.data.datasets import make_synthetic
from sgdl_wrap.phase1.memorization import MemorizationPass
from sgdl_wrap.phase1.noise import NoiseEstimate
from sgdl_wrap.phase2.scheduler import DenoisingScheduler, LSTMScorer, MLPScorer
from toy_models import FactoredMF, TinyMF


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=30, n_items=40, interactions_per_user=6, seed=2)


def _wrapper(data, model=None, loss=None, **settings):
    torch.manual_seed(0)
    if model is None:
        model = TinyMF(data.train.n_users, data.train.n_items, dim=4)
    model = model.double()
    config = SGDLConfig(**{"history": 1, "seed": 0, **settings})
    sgdl = SGDLWrapper(model, loss or BPRLoss(), train=data.train, config=config)
    sgdl.sampler = FixedNegatives(data.train.n_items)
    return model, sgdl


def _fixed_marks(monkeypatch, epochs_of_marks):
    """Make the memorization test return these marks, one ``[N]`` array per epoch."""
    queue = [np.asarray(marks, dtype=bool) for marks in epochs_of_marks]

    def memorization_pass(model, loss, train, *args, **kwargs):
        return MemorizationPass(marks=queue.pop(0), losses=np.linspace(0.1, 2.0, len(train)))

    monkeypatch.setattr(tracker_module, "memorization_pass", memorization_pass)


def _no_switch(monkeypatch, n):
    """A noise estimate of 0: the switch would need every row memorized."""
    monkeypatch.setattr(tracker_module, "estimate_noise_rate", lambda *a, **k: NoiseEstimate(
        rate=0.0, posterior=np.zeros(n), means=(0.0, 1.0), stds=(1.0, 1.0), weights=(1.0, 0.0)))


# --------------------------------------------------------------------------- Phase I


@pytest.mark.parametrize(("history", "expected"), [(2, [True, True, False]),
                                                    (3, [False, True, False])])
def test_field_history_is_the_number_of_epochs_of_marks_kept(data, monkeypatch, history,
                                                              expected):
    # Authors' rule: memorized with at least h/2 marks among the last h epochs.
    n = len(data.train)
    # Rows 0, 1, 2 marked F F T, T T F and T F F over three epochs.
    rows = [[False, True, True], [False, True, False], [True, False, False]]
    _fixed_marks(monkeypatch, [r + [False] * (n - 3) for r in rows])
    _no_switch(monkeypatch, n)
    _, sgdl = _wrapper(data, history=history)
    for _ in rows:
        sgdl.end_epoch()
    assert sgdl.memorized[:3].tolist() == expected


@pytest.mark.parametrize(("rule", "expected"), [("authors", False), ("paper", True)])
def test_field_threshold_rule_counts_unfilled_slots_or_not(data, monkeypatch, rule, expected):
    # One epoch of h = 4 marked: 1 >= 4/2 fails (authors); the mean over 1 filled slot is 1.
    n = len(data.train)
    _fixed_marks(monkeypatch, [[True] * n])
    _no_switch(monkeypatch, n)
    _, sgdl = _wrapper(data, history=4, threshold_rule=rule)
    sgdl.end_epoch()
    assert sgdl.memorized.all() == expected and sgdl.memorized.any() == expected


def test_field_memorization_test_full_ranks_each_positive_among_all_items(data):
    model, sgdl = _wrapper(data, memorization_test="full")
    sgdl.end_epoch()
    train = data.train
    with torch.no_grad():
        scores = model.score_all(torch.arange(train.n_users)).numpy()
    expected = np.array([
        (scores[u] > scores[u, i]).sum() < (train.users == u).sum()
        for u, i in zip(train.users, train.items)
    ])
    np.testing.assert_array_equal(sgdl.memorized, expected)
    _, sampled = _wrapper(data)
    sampled.end_epoch()
    assert not np.array_equal(sampled.memorized, expected)


@pytest.mark.parametrize(("shift", "needed"), [(0.0, 96), (0.1, 94), (-0.1, 99)])
@pytest.mark.parametrize("short", [1, 0])
def test_field_noise_rate_shift_moves_the_switch(monkeypatch, data, shift, needed, short):
    # 120 rows, noise rate 0.2: the switch needs (1 - 0.2 (1 + shift)) 120 memorized rows,
    # 96 unshifted, 93.6 -> 94 at +0.1 (earlier), 98.4 -> 99 at -0.1 (later).
    n = len(data.train)
    assert n == 120
    _, sgdl = _wrapper(data, noise_rate_shift=shift)
    monkeypatch.setattr(tracker_module, "estimate_noise_rate", lambda *a, **k: NoiseEstimate(
        rate=0.2, posterior=np.zeros(n), means=(0.0, 1.0), stds=(1.0, 1.0),
        weights=(0.8, 0.2)))
    mask = np.arange(n) < needed - short
    monkeypatch.setattr(sgdl.tracker.bank, "memorized", lambda: mask)
    assert sgdl.end_epoch().switched == (short == 0)


def test_field_switch_epoch_forces_the_switch_after_that_epoch(data, monkeypatch):
    n = len(data.train)
    _fixed_marks(monkeypatch, [[True] * 5 + [False] * (n - 5)] * 4)
    _no_switch(monkeypatch, n)
    _, sgdl = _wrapper(data, switch_epoch=2)
    assert [sgdl.end_epoch().switched for _ in range(4)] == [False, False, True, False]
    assert sgdl.switch_epoch == 2 and sgdl.memorized_rows.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("factor", [0.2, 0.5])
def test_field_phase1_lr_factor_scales_the_phase_one_step(data, factor):
    model, sgdl = _wrapper(data, phase1_lr_factor=factor)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.4)
    batch = batch_of(data.train, range(12))
    before = detached_parameters(model)
    gradient = torch.autograd.grad(losses_at(model, BPRLoss(), before, batch).mean(),
                                   list(before.values()))
    sgdl.step(batch, optimizer)
    for (name, p), g in zip(model.named_parameters(), gradient):
        torch.testing.assert_close(p.detach(), before[name].detach() - factor * 0.4 * g)
    assert optimizer.param_groups[0]["lr"] == 0.4


def _noise_rate_fit_with(data, setting):
    """The wrapper's noise rate under ``setting`` equals sklearn's mixture fitted with it,
    and differs from the fit with the default settings."""
    _, sgdl = _wrapper(data, **setting)
    report = sgdl.end_epoch()
    values = sgdl.last_normalized_losses.reshape(-1, 1)

    def rate(max_iter=100, tol=1e-2, reg_covar=5e-4):
        mixture = GaussianMixture(2, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
                                  random_state=0).fit(values)
        return mixture.predict_proba(values)[:, int(np.argmax(mixture.means_))].mean()

    chosen = rate(**{k.removeprefix("gmm_"): v for k, v in setting.items()})
    assert report.noise_rate == pytest.approx(chosen, abs=1e-12)
    assert chosen != pytest.approx(rate(), abs=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_field_gmm_max_iter_caps_the_mixtures_iterations(data):
    _noise_rate_fit_with(data, {"gmm_max_iter": 1})


def test_field_gmm_tol_stops_the_mixture(data):
    _noise_rate_fit_with(data, {"gmm_tol": 1e-6})


def test_field_gmm_reg_covar_regularises_the_mixtures_variances(data):
    _noise_rate_fit_with(data, {"gmm_reg_covar": 0.3})


# --------------------------------------------------------------------------- Phase II


def _phase_two(data, model=None, loss=None, memorized=(4,), **settings):
    model, sgdl = _wrapper(data, model, loss, **settings)
    sgdl.start_self_guided(np.isin(np.arange(len(data.train)), memorized))
    return model, sgdl


def test_field_lookahead_lr_replaces_the_optimizers_rate(data):
    model, sgdl = _phase_two(data, scheduler="none", memorized_batch_size=3, lookahead_lr=0.05)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    batch = batch_of(data.train, [0, 7, 11, 19])
    expected = meta_gradient(model, BPRLoss(), sgdl.weight_net, batch,
                             batch_of(data.train, [4] * 3), 0.05)
    sgdl.step(batch, optimizer)
    for name, p in sgdl.weight_net.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], msg=name)


def _first_adam_step(module, before):
    """Largest absolute change of ``module``'s parameters since ``before``."""
    return max(float((p.detach() - before[n]).abs().max()) for n, p in module.named_parameters())


@pytest.mark.parametrize("meta_lr", [1e-2, 1e-3])
def test_field_meta_lr_is_the_weighting_nets_adam_rate(data, meta_lr):
    model, sgdl = _phase_two(data, scheduler="none", meta_lr=meta_lr)
    before = {n: p.detach().clone() for n, p in sgdl.weight_net.named_parameters()}
    sgdl.step(batch_of(data.train, range(8)), torch.optim.SGD(model.parameters(), lr=0.3))
    # Adam's first step moves every parameter with a gradient by lr * g / (|g| + eps).
    assert _first_adam_step(sgdl.weight_net, before) == pytest.approx(meta_lr, rel=1e-3)


@pytest.mark.parametrize("hidden", [3, 7])
def test_field_weight_hidden_sizes_the_weighting_nets_hidden_layer(data, hidden):
    _, sgdl = _wrapper(data, weight_hidden=hidden)
    sizes = [tuple(p.shape) for p in sgdl.weight_net.parameters()]
    assert sizes == [(hidden, 1), (hidden,), (1, hidden), (1,)]


@pytest.mark.parametrize("per_candidate", [True, False])
def test_field_weight_candidates_weighs_each_candidate_of_a_pointwise_loss(data, per_candidate):
    loss = BCELoss(2)
    model, sgdl = _phase_two(data, loss=loss, weighting="frozen",
                             weight_candidates=per_candidate)
    batch = batch_of(data.train, range(6), k=2)
    objective = sgdl.objective(batch)
    with torch.no_grad():
        terms = loss.candidate_losses(model.score(batch.users, batch.candidates))
        rows = terms.sum(dim=1)
        expected = ((sgdl.weight_net(terms) * terms).sum(dim=1).mean() if per_candidate
                    else (sgdl.weight_net(rows) * rows).mean())
    torch.testing.assert_close(objective.detach(), expected)


@pytest.mark.parametrize(("size", "drawn"), [(None, 6), (9, 9)])
def test_field_memorized_batch_size_is_the_memorized_draws_per_step(data, size, drawn):
    model, sgdl = _phase_two(data, memorized=range(20), memorized_batch_size=size)
    sgdl.step(batch_of(data.train, range(6)), torch.optim.SGD(model.parameters(), lr=0.1))
    assert sgdl.sampler.requests == [drawn]


@pytest.mark.parametrize("weighting", ["frozen", "uniform"])
def test_field_weighting_sets_the_phase_two_weights(data, weighting):
    model, sgdl = _phase_two(data, weighting=weighting)
    net = {n: p.detach().clone() for n, p in sgdl.weight_net.named_parameters()}
    batch = batch_of(data.train, range(8))
    objective = sgdl.objective(batch)
    with torch.no_grad():
        losses = BPRLoss()(model.score(batch.users, batch.candidates))
        weights = sgdl.weight_net(losses) if weighting == "frozen" else torch.ones(8)
    torch.testing.assert_close(objective.detach(), (weights * losses).mean())
    for name, p in sgdl.weight_net.named_parameters():
        assert torch.equal(p, net[name])


def test_field_denoising_off_trains_on_the_memorized_rows_only(data):
    model, sgdl = _phase_two(data, memorized=(1, 3), denoising=False)
    batch = batch_of(data.train, range(6))
    objective = sgdl.objective(batch)
    with torch.no_grad():
        losses = BPRLoss()(model.score(batch.users, batch.candidates))
    torch.testing.assert_close(objective.detach(), losses[[1, 3]].mean())
    assert sorted(int(r) for b in sgdl.batches(4) for r in b.rows) == [1, 3]


@pytest.mark.parametrize(("kind", "scorer"), [("lstm", LSTMScorer), ("mlp", MLPScorer),
                                              ("top_f", type(None)), ("none", None)])
def test_field_scheduler_picks_the_scorer(data, kind, scorer):
    model, sgdl = _phase_two(data, memorized=range(20), scheduler=kind)
    sgdl.step(batch_of(data.train, range(8)), torch.optim.SGD(model.parameters(), lr=0.1))
    if scorer is None:
        assert sgdl.meta.scheduler is None
    else:
        assert isinstance(sgdl.meta.scheduler.net, scorer)
        assert (sgdl.meta.scheduler_optimizer is None) == (kind == "top_f")


@pytest.mark.parametrize(("kind", "hidden"), [("lstm", 4), ("mlp", 6)])
def test_field_scheduler_hidden_sizes_the_scorer(data, kind, hidden):
    model, sgdl = _phase_two(data, memorized=range(20), scheduler=kind, scheduler_hidden=hidden)
    sgdl.step(batch_of(data.train, range(8)), torch.optim.SGD(model.parameters(), lr=0.1))
    net = sgdl.meta.scheduler.net
    assert (net.loss_lstm.hidden_size if kind == "lstm" else net.net[0].out_features) == hidden


@pytest.mark.parametrize("rate", [1e-2, 1e-3])
def test_field_scheduler_lr_is_the_schedulers_adam_rate(data, rate):
    # Against a run whose scheduler barely moves: the same scheduler at initialisation.
    schedulers = []
    for scheduler_lr in (rate, 1e-12):
        model, sgdl = _phase_two(data, memorized=range(20), scheduler="mlp",
                                 scheduler_lr=scheduler_lr)
        sgdl.step(batch_of(data.train, range(8)), torch.optim.SGD(model.parameters(), lr=0.1))
        schedulers.append(sgdl.meta.scheduler)
    initial = {n: p.detach() for n, p in schedulers[1].named_parameters()}
    assert _first_adam_step(schedulers[0], initial) == pytest.approx(rate, rel=1e-3)


@pytest.mark.parametrize("tau", [0.05, 3.0])
def test_field_tau_reaches_the_scheduler(data, tau):
    # The scheduler's own test checks what tau does to the selection.
    model, sgdl = _phase_two(data, memorized=range(20), scheduler="mlp", tau=tau)
    sgdl.step(batch_of(data.train, range(8)), torch.optim.SGD(model.parameters(), lr=0.1))
    assert sgdl.meta.scheduler.tau == tau


def test_field_sampling_reinforce_trains_the_scorer_by_the_score_function(data, monkeypatch):
    model, sgdl = _phase_two(data, memorized=range(20), scheduler="mlp", sampling="reinforce")
    calls = []
    real = DenoisingScheduler.reinforce_loss
    monkeypatch.setattr(DenoisingScheduler, "reinforce_loss",
                        lambda self, *a: calls.append(1) or real(self, *a))
    sgdl.step(batch_of(data.train, range(8)), torch.optim.SGD(model.parameters(), lr=0.1))
    assert sgdl.meta.scheduler.sampling == "reinforce" and calls == [1]
    assert float(sgdl.meta.scheduler.baseline) != 0.0


@pytest.mark.parametrize("reset", [True, False])
def test_field_reset_each_epoch_recreates_the_meta_optimizers(data, reset):
    model, sgdl = _phase_two(data, memorized=range(20), reset_each_epoch=reset,
                             scheduler="mlp")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps, schedulers = [], []
    for _ in range(2):
        for start in (0, 8):
            sgdl.step(batch_of(data.train, range(start, start + 8)), optimizer)
        steps.append({int(s["step"]) for s in sgdl.meta.weight_optimizer.state.values()})
        schedulers.append(sgdl.meta.scheduler)
        sgdl.end_epoch()
    assert steps == ([{2}, {2}] if reset else [{2}, {4}])
    assert (schedulers[0] is schedulers[1]) == (not reset)


@pytest.mark.parametrize("where", ["training", "memorized"])
@pytest.mark.parametrize("model_kind", ["factors", "modules", "loop"])
def test_field_feature_lookahead_sets_where_the_schedulers_cosines_are_taken(
        data, monkeypatch, where, model_kind):
    model = (FactoredMF if model_kind == "factors" else TinyMF)(
        data.train.n_users, data.train.n_items, dim=4)
    model, sgdl = _phase_two(data, model, memorized=(4,), memorized_batch_size=3,
                             feature_lookahead=where, per_sample_gradients=model_kind,
                             scheduler="mlp")
    seen = {}
    real_select = DenoisingScheduler.select

    def select(self, losses, cosines, draws, generator):
        seen["cosines"] = cosines.detach().clone()
        return real_select(self, losses, cosines, draws, generator)

    monkeypatch.setattr(DenoisingScheduler, "select", select)
    lr = 0.3
    batch, meta_batch = batch_of(data.train, [0, 7, 11, 19]), batch_of(data.train, [4] * 3)
    params = detached_parameters(model)
    if where == "training":
        weights = sgdl.weight_net(losses_at(model, BPRLoss(), params, batch).detach()).detach()
        objective = (weights * losses_at(model, BPRLoss(), params, batch)).mean()
    else:
        objective = losses_at(model, BPRLoss(), params, meta_batch).mean()
    grads = torch.autograd.grad(objective, list(params.values()))
    point = {n: p.detach() - lr * g for (n, p), g in zip(params.items(), grads)}
    expected = gradient_cosines(model, BPRLoss(), meta_batch, point)
    sgdl.step(batch, torch.optim.SGD(model.parameters(), lr=lr))
    assert sgdl.per_sample_strategy == model_kind
    torch.testing.assert_close(seen["cosines"], expected)


@pytest.mark.parametrize("strategy", ["factors", "modules", "loop"])
def test_field_per_sample_gradients_picks_how_the_cosines_are_computed(data, strategy):
    # The numbers of each strategy: see the feature_lookahead test above.
    model = (FactoredMF if strategy == "factors" else TinyMF)(30, 40, dim=4)
    _, sgdl = _wrapper(data, model, per_sample_gradients=strategy)
    assert sgdl.per_sample_strategy == strategy
    if strategy == "factors":
        with pytest.raises(TypeError, match="per_sample_factors"):
            _wrapper(data, TinyMF(30, 40, dim=4), per_sample_gradients="factors")


@pytest.mark.parametrize("lookahead", ["gram", "functional"])
def test_field_lookahead_gram_gives_the_functional_meta_gradient(data, lookahead):
    torch.manual_seed(0)
    model = LightGCN(data.train, dim=4, layers=2)
    model, sgdl = _phase_two(data, model, scheduler="none", memorized_batch_size=3,
                             lookahead=lookahead)
    assert sgdl.lookahead_strategy == lookahead
    batch = batch_of(data.train, [0, 7, 11, 19])
    expected = meta_gradient(model, BPRLoss(), sgdl.weight_net, batch,
                             batch_of(data.train, [4] * 3), 0.3)
    sgdl.step(batch, torch.optim.SGD(model.parameters(), lr=0.3))
    for name, p in sgdl.weight_net.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], msg=name)


def test_field_seed_seeds_the_wrappers_own_randomness_only(data):
    model = TinyMF(data.train.n_users, data.train.n_items, dim=4)
    draws = []
    for seed in (0, 0, 1):
        state = torch.get_rng_state()
        sgdl = SGDLWrapper(model, BPRLoss(), train=data.train, config=SGDLConfig(seed=seed))
        assert torch.equal(torch.get_rng_state(), state)
        draws.append(([p.detach().clone() for p in sgdl.weight_net.parameters()],
                      [b.rows.tolist() for b in sgdl.batches(16)]))
    (net_a, rows_a), (net_b, rows_b), (net_c, rows_c) = draws
    assert all(torch.equal(a, b) for a, b in zip(net_a, net_b)) and rows_a == rows_b
    assert not all(torch.equal(a, c) for a, c in zip(net_a, net_c)) and rows_a != rows_c


def test_every_field_has_a_test():
    tested = {name.removeprefix("test_field_") for name in globals()
              if name.startswith("test_field_")}
    missing = [f.name for f in dataclasses.fields(SGDLConfig)
               if not any(t == f.name or t.startswith(f"{f.name}_") for t in tested)]
    assert not missing, f"SGDLConfig fields without a test_field_<name>_... test: {missing}"
