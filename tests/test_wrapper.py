"""SGDLWrapper end to end with models defined here (not from adapters/)."""

import copy

import numpy as np
import pytest
import torch

from sgdl_wrap import Batch, SGDLConfig, SGDLWrapper
from sgdl_wrap.adapters.losses import BCELoss, BPRLoss
from sgdl_wrap.data.datasets import make_synthetic
from sgdl_wrap.wrapper import Phase
from toy_models import FactoredMF, TinyMF


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=60, n_items=80, interactions_per_user=10, seed=0)


def _wrapper(data, model_cls=FactoredMF, loss=None, **config):
    torch.manual_seed(0)
    model = model_cls(data.train.n_users, data.train.n_items, dim=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    settings = dict(history=2, switch_epoch=1, seed=0, phase1_lr_factor=1.0)
    settings.update(config)
    sgdl = SGDLWrapper(model, loss or BPRLoss(), train=data.train, config=SGDLConfig(**settings))
    return model, optimizer, sgdl


def _epochs(sgdl, optimizer, count, batch_size=64):
    reports = []
    for _ in range(count):
        for batch in sgdl.batches(batch_size):
            sgdl.step(batch, optimizer)
        reports.append(sgdl.end_epoch())
    return reports


@pytest.mark.parametrize("strategy", ["factors", "loop"])
@pytest.mark.parametrize("loss", [BPRLoss(), BCELoss(2)])
def test_custom_model_runs_both_phases(data, strategy, loss):
    model_cls = FactoredMF if strategy == "factors" else TinyMF
    _, optimizer, sgdl = _wrapper(data, model_cls, loss, per_sample_gradients=strategy)
    reports = _epochs(sgdl, optimizer, 3)
    assert [r.phase for r in reports] == ["memorization", "memorization", "self_guided"]
    assert reports[1].switched and sgdl.switch_epoch == 1
    assert reports[2].weight_clean is not None and 0 < reports[2].weight_clean < 1
    assert reports[0].memorization_precision is not None
    assert np.isfinite([r.noise_rate for r in reports]).all()
    assert reports[-1].train_loss == pytest.approx(float(sgdl.last_losses.mean()))


def test_meta_step_leaves_model_and_optimizer_untouched(data):
    model, optimizer, sgdl = _wrapper(data)
    _epochs(sgdl, optimizer, 2)
    assert sgdl.phase is Phase.SELF_GUIDED
    optimizer.zero_grad(set_to_none=True)
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    psi = [p.detach().clone() for p in sgdl.weight_net.parameters()]
    batch = next(sgdl.batches(32))
    objective = sgdl.objective(batch, lookahead_lr=0.01)
    for name, p in model.named_parameters():
        assert torch.equal(p, params[name]) and p.grad is None
    assert str(optimizer.state_dict()) == str(optimizer_state)
    assert any(not torch.equal(a, b) for a, b in zip(psi, sgdl.weight_net.parameters()))
    objective.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_weighted_objective_uses_the_updated_weights(data):
    model, optimizer, sgdl = _wrapper(data)
    _epochs(sgdl, optimizer, 2)
    batch = next(sgdl.batches(32))
    objective = sgdl.objective(batch, lookahead_lr=0.01)
    with torch.no_grad():
        losses = BPRLoss()(model.score(batch.users, batch.candidates))
        expected = (sgdl.weight_net(losses) * losses).mean()
    torch.testing.assert_close(objective.detach(), expected)
    rows = batch.rows.numpy()
    # What the weighting net was given, and the weights it then gave (updated psi).
    torch.testing.assert_close(torch.from_numpy(sgdl.sample_losses()[rows]).float(), losses)
    torch.testing.assert_close(torch.from_numpy(sgdl.sample_weights()[rows]).float(),
                               sgdl.weight_net(losses).detach())
    assert np.isnan(sgdl.sample_losses()[np.setdiff1d(np.arange(len(data.train)), rows)]).all()


@pytest.mark.parametrize("strategy", ["factors", "loop"])
def test_a_pointwise_loss_can_weigh_each_candidate(data, strategy):
    model_cls = FactoredMF if strategy == "factors" else TinyMF
    model, optimizer, sgdl = _wrapper(data, model_cls, BCELoss(2), weight_candidates=True,
                                      per_sample_gradients=strategy)
    _epochs(sgdl, optimizer, 2)
    batch = next(sgdl.batches(32))
    objective = sgdl.objective(batch, lookahead_lr=0.01)
    with torch.no_grad():
        terms = BCELoss(2).candidate_losses(model.score(batch.users, batch.candidates))
        weights = sgdl.weight_net(terms)
        expected = (weights * terms).sum(dim=1).mean()
        one_per_row = (sgdl.weight_net(terms.sum(dim=1)) * terms.sum(dim=1)).mean()
    torch.testing.assert_close(objective.detach(), expected)
    assert not torch.allclose(expected, one_per_row)
    recorded = sgdl.sample_weights()[batch.rows.numpy()]
    torch.testing.assert_close(torch.from_numpy(recorded).float(), weights[:, 0])
    weighed = sgdl.sample_losses()[batch.rows.numpy()]
    torch.testing.assert_close(torch.from_numpy(weighed).float(), terms[:, 0])


def test_weighing_candidates_leaves_a_pairwise_loss_one_weight_per_row(data):
    model, optimizer, sgdl = _wrapper(data, weight_candidates=True)
    _epochs(sgdl, optimizer, 2)
    batch = next(sgdl.batches(32))
    objective = sgdl.objective(batch, lookahead_lr=0.01)
    with torch.no_grad():
        losses = BPRLoss()(model.score(batch.users, batch.candidates))
        expected = (sgdl.weight_net(losses) * losses).mean()
    torch.testing.assert_close(objective.detach(), expected)


def test_without_denoising_learning_trains_on_memorized_rows_only(data):
    _, optimizer, sgdl = _wrapper(data, denoising=False)
    _epochs(sgdl, optimizer, 2)
    rows = np.concatenate([b.rows.numpy() for b in sgdl.batches(64)])
    assert sorted(rows.tolist()) == sorted(sgdl.memorized_rows.tolist())


@pytest.mark.parametrize("scheduler", ["none", "mlp", "top_f", "lstm"])
@pytest.mark.parametrize("sampling", ["gumbel", "reinforce"])
def test_scheduler_variants_train(data, scheduler, sampling):
    if scheduler in ("none", "top_f") and sampling == "reinforce":
        pytest.skip("sampling only applies to learned scorers")
    _, optimizer, sgdl = _wrapper(data, scheduler=scheduler, sampling=sampling,
                                  reset_each_epoch=False)
    reports = _epochs(sgdl, optimizer, 3)
    assert reports[-1].phase == "self_guided"
    assert (sgdl.meta.scheduler is None) == (scheduler == "none")


def test_resume_equals_an_uninterrupted_run(data, tmp_path):
    model, optimizer, sgdl = _wrapper(data, reset_each_epoch=False)
    straight = _epochs(sgdl, optimizer, 4)

    model, optimizer, sgdl = _wrapper(data, reset_each_epoch=False)
    _epochs(sgdl, optimizer, 2)
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "sgdl": sgdl.state_dict(), "torch_rng": torch.get_rng_state()}, path)
    del model, optimizer, sgdl
    saved = torch.load(path, weights_only=False)
    model2, optimizer2, sgdl2 = _wrapper(data, reset_each_epoch=False)
    model2.load_state_dict(saved["model"])
    optimizer2.load_state_dict(saved["optimizer"])
    sgdl2.load_state_dict(saved["sgdl"])
    torch.set_rng_state(saved["torch_rng"])
    resumed = _epochs(sgdl2, optimizer2, 2)
    assert [r.as_dict() for r in straight[2:]] == [r.as_dict() for r in resumed]


class _MeanLoss(BPRLoss):
    def __call__(self, scores):
        return super().__call__(scores).mean()


class _NanLoss(BPRLoss):
    def __call__(self, scores):
        return super().__call__(scores) * torch.nan


def test_errors_name_the_problem(data):
    _, optimizer, sgdl = _wrapper(data, loss=_MeanLoss())
    with pytest.raises(ValueError, match="returned a scalar"):
        sgdl.step(next(sgdl.batches(8)), optimizer)
    _, optimizer, sgdl = _wrapper(data, loss=_NanLoss())
    with pytest.raises(FloatingPointError, match="epoch 0, step 0"):
        sgdl.step(next(sgdl.batches(8)), optimizer)
    _, optimizer, sgdl = _wrapper(data)
    with pytest.raises(RuntimeError, match="memorized set is empty"):
        sgdl.start_self_guided()
    bad = next(sgdl.batches(4))
    bad = Batch(bad.rows + len(data.train), bad.users, bad.items, bad.negatives)
    with pytest.raises(ValueError, match="out of range"):
        sgdl.step(bad, optimizer)
    with pytest.raises(KeyError, match="did you mean"):
        SGDLConfig.from_dict({"histroy": 5})
    with pytest.raises(ValueError, match="tau must be a positive number"):
        SGDLConfig(tau=0)
    with pytest.raises(ValueError, match="scheduler must be one of"):
        SGDLConfig(scheduler="gru")
    with pytest.raises(ValueError, match="weight_candidates must be True or False, got 'yes'"):
        SGDLConfig(weight_candidates="yes")
    with pytest.raises(TypeError, match="needs TinyMF.per_sample_factors"):
        _wrapper(data, TinyMF, per_sample_gradients="factors")
    other = make_synthetic(n_users=10, n_items=20, interactions_per_user=5, seed=1)
    with pytest.raises(ValueError, match="id space"):
        SGDLWrapper(TinyMF(60, 80), BPRLoss(), train=other.train)


@pytest.mark.parametrize(("setting", "message"), [
    ({"history": 0}, "history must be a positive integer, got 0"),
    ({"weight_hidden": True}, "weight_hidden must be a positive integer, got True"),
    ({"memorized_batch_size": 2.5}, "memorized_batch_size must be a positive integer or None"),
    ({"switch_epoch": -1}, "switch_epoch must be a non-negative integer or None, got -1"),
    ({"seed": "0"}, "seed must be a non-negative integer, got '0'"),
    ({"meta_lr": float("inf")}, "meta_lr must be a positive number, got inf"),
    ({"scheduler_lr": float("nan")}, "scheduler_lr must be a positive number, got nan"),
    ({"lookahead_lr": "1e-3"}, "lookahead_lr must be a positive number or None, got '1e-3'"),
    ({"noise_rate_shift": 1.0}, r"noise_rate_shift must be a number in \(-1, 1\), got 1.0"),
    ({"denoising": 1}, "denoising must be True or False, got 1"),
    ({"lookahead": "exact"}, "lookahead must be one of"),
])
def test_config_rejects_invalid_values(setting, message):
    with pytest.raises(ValueError, match=message):
        SGDLConfig(**setting)


def test_config_accepts_numpy_scalars():
    config = SGDLConfig(seed=np.int64(3), history=np.int32(5), meta_lr=np.float32(1e-3))
    assert (config.seed, config.history) == (3, 5)


@pytest.mark.parametrize("denoising", [True, False])
def test_phase_two_warns_when_the_unweighted_loss_rises(data, monkeypatch, caplog, denoising):
    import sgdl_wrap.phase1.tracker as tracker_module

    _, optimizer, sgdl = _wrapper(data, denoising=denoising)
    real_pass = tracker_module.memorization_pass
    scale = {"factor": 1.0}

    def inflated(*args, **kwargs):
        result = real_pass(*args, **kwargs)
        result.losses[:] = result.losses * scale["factor"]
        return result

    monkeypatch.setattr(tracker_module, "memorization_pass", inflated)
    _epochs(sgdl, optimizer, 2)
    with caplog.at_level("WARNING", logger="sgdl_wrap"):
        scale["factor"] = 1.0
        _epochs(sgdl, optimizer, 1)
        quiet = [r for r in caplog.records if "giving up" in r.message]
        # Warned when the loss crosses the limit, not again while it stays above it.
        for factor in (10.0, 10.0, 1.0, 10.0):
            scale["factor"] = factor
            _epochs(sgdl, optimizer, 1)
    assert sgdl.reports[-1].phase == "self_guided"
    # Only a weighting net can give up on rows; without denoising learning there is none.
    warned = len(quiet) + 2 if denoising else 0
    assert len([r for r in caplog.records if "giving up" in r.message]) == warned


def _as_pickled_before_the_pipeline(sgdl):
    """``sgdl``'s pickled ``__dict__`` in the layout of the code before Phase II became one
    pipeline (the nets, optimizers and bookkeeping arrays on the wrapper itself)."""
    state = dict(sgdl.__getstate__())
    meta, tracker, weights = state.pop("meta"), state.pop("tracker"), state.pop("epoch_weights")
    state.update(
        weight_net=meta.weight_net, weight_optimizer=meta.weight_optimizer,
        scheduler=meta.scheduler, scheduler_optimizer=meta.scheduler_optimizer,
        _scheduler_cosines=meta.scheduler_cosines, generator=meta.generator, bank=tracker.bank,
        _weight_sum=weights.weight_sum, _weighed_loss_sum=weights.loss_sum,
        _weight_count=weights.count, _recorded_factors=sgdl.factor_source == "modules",
        _use_factors=sgdl.factor_source is not None, _gram_capable=False,
        _candidate_losses=None,
    )
    del state["factor_source"], state["_phase_two"]
    return state


@pytest.mark.parametrize("model_cls", [FactoredMF, TinyMF])
def test_a_wrapper_pickled_before_the_pipeline_trains_on_as_it_would_have(data, model_cls):
    import pickle

    _, optimizer, sgdl = _wrapper(data, model_cls, reset_each_epoch=False)
    _epochs(sgdl, optimizer, 3)
    twin, twin_optimizer = pickle.loads(pickle.dumps((sgdl, optimizer)))
    old = SGDLWrapper.__new__(SGDLWrapper)
    old.__setstate__(_as_pickled_before_the_pipeline(twin))
    assert old.factor_source == sgdl.factor_source
    straight = _epochs(sgdl, optimizer, 2)
    resumed = _epochs(old, twin_optimizer, 2)
    assert [r.as_dict() for r in straight] == [r.as_dict() for r in resumed]


def test_a_pickle_naming_moved_modules_finds_their_classes():
    from sgdl_wrap.legacy import moved_module

    assert moved_module("sgdl_wrap.memory_bank") == "sgdl_wrap.phase1.memory_bank"
    assert moved_module("sgdl_wrap.sampling") == "sgdl_wrap.data.sampling"
    assert moved_module("sgdl_wrap.datasets.split") == "sgdl_wrap.data.datasets.split"
    assert moved_module("sgdl_wrap.meta_lookahead") == "sgdl_wrap.legacy"
    assert moved_module("sgdl_wrap.config") == "sgdl_wrap.config"
    assert moved_module("adapters.lightgcn") == "sgdl_wrap.adapters.lightgcn"
    assert moved_module("benchmarks.trainers") == "sgdl_wrap.benchmarks.running.trainers"
    assert moved_module("benchmarks.baselines.tce") == "sgdl_wrap.benchmarks.baselines.tce"


def test_the_weighting_controls_differ_from_sgdl_in_the_weights_only(data):
    runs = {w: _wrapper(data, weighting=w) for w in ("learned", "frozen", "uniform")}
    frozen_net = runs["frozen"][2].weight_net
    initial_net = {n: p.detach().clone() for n, p in frozen_net.named_parameters()}
    phase_one = {w: _epochs(sgdl, optimizer, 2) for w, (_, optimizer, sgdl) in runs.items()}
    learned_model = runs["learned"][0]
    for weighting, (model, _, sgdl) in runs.items():
        # Phase I is SGDL's: the same reports, switch, memorized set and parameters.
        assert [r.as_dict() for r in phase_one[weighting]] == [
            r.as_dict() for r in phase_one["learned"]]
        assert sgdl.switch_epoch == 1 and sgdl.phase is Phase.SELF_GUIDED
        np.testing.assert_array_equal(sgdl.memorized_rows, runs["learned"][2].memorized_rows)
        for (name, p), q in zip(model.named_parameters(), learned_model.parameters()):
            assert torch.equal(p, q), name
    batches = {w: sgdl.batches(32) for w, (_, _, sgdl) in runs.items()}
    first = {w: next(b) for w, b in batches.items()}
    objectives = {w: runs[w][2].objective(first[w], lookahead_lr=0.01) for w in runs}
    with torch.no_grad():
        losses = BPRLoss()(learned_model.score(first["learned"].users,
                                               first["learned"].candidates))
        frozen_weights = frozen_net(losses)
    torch.testing.assert_close(objectives["uniform"].detach(), losses.mean())
    torch.testing.assert_close(objectives["frozen"].detach(), (frozen_weights * losses).mean())
    assert not torch.allclose(objectives["learned"].detach(), objectives["frozen"].detach())
    for name, p in frozen_net.named_parameters():
        assert torch.equal(p, initial_net[name]), name
    assert runs["learned"][2].meta.weight_optimizer is not None
    np.testing.assert_array_equal(runs["uniform"][2].sample_weights()[first["uniform"].rows],
                                  np.ones(32))
    # The controls draw the memorized batch too: the next batches are the same.
    following = {w: next(b) for w, b in batches.items()}
    for weighting in ("frozen", "uniform"):
        for field in ("rows", "users", "items", "negatives"):
            assert torch.equal(getattr(following[weighting], field),
                               getattr(following["learned"], field)), (weighting, field)


@pytest.mark.parametrize("weighting", ["frozen", "uniform"])
def test_the_weighting_controls_need_no_look_ahead_rate(data, weighting):
    model, optimizer, sgdl = _wrapper(data, weighting=weighting)
    _epochs(sgdl, optimizer, 2)
    objective = sgdl.objective(next(sgdl.batches(16)))
    objective.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_a_state_saved_before_a_setting_existed_loads_with_its_default(data):
    _, optimizer, sgdl = _wrapper(data)
    _epochs(sgdl, optimizer, 2)
    state = sgdl.state_dict()
    del state["config"]["weighting"]
    _, _, restored = _wrapper(data)
    restored.load_state_dict(state)
    assert restored.phase is Phase.SELF_GUIDED
    _, _, other = _wrapper(data, weighting="frozen")
    with pytest.raises(ValueError, match="different SGDLConfig"):
        other.load_state_dict(state)
