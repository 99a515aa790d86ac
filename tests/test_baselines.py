"""Each baseline on the synthetic data: it trains, and its own mechanism does what it claims."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from sgdl_wrap import Interactions, PopularityNegativeSampler
from sgdl_wrap.benchmarks.baselines.deca import DeCATrainer, deca_terms
from sgdl_wrap.benchmarks.baselines.pointwise import (
    RCETrainer,
    TCETrainer,
    drop_rate,
    reweighted_loss,
    truncated_loss,
)
from sgdl_wrap.benchmarks.baselines.relabel import IRTrainer, relabel
from sgdl_wrap.benchmarks.baselines.sgcn import SGCNTrainer
from sgdl_wrap.benchmarks.baselines.sgl import SGLTrainer, info_nce
from sgdl_wrap.benchmarks.baselines.wbpr import WBPRTrainer
from sgdl_wrap.benchmarks.running.methods import METHODS
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.data.datasets import make_synthetic


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=120, n_items=150, seed=3)


def trainer_for(data, method, model, **extra):
    config = RunConfig(dataset="synthetic", model=model, method=method, seed=0, extra=extra)
    return METHODS[method](data, config)


TRAINABLE = [("tce", "neumf"), ("rce", "cdae"), ("deca", "neumf"), ("deca", "lightgcn"),
             ("wbpr", "lightgcn"), ("ir", "neumf"), ("sgcn", "lightgcn"), ("sgcn", "ngcf"),
             ("sgl", "lightgcn"), ("sgl", "ngcf")]


@pytest.mark.parametrize(("method", "model"), TRAINABLE)
def test_baseline_trains_and_its_objective_decreases(data, method, model):
    trainer = trainer_for(data, method, model)
    losses = [trainer.train_epoch(epoch) for epoch in range(4)]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]


def test_drop_rate_ramps_linearly_then_holds():
    assert drop_rate(0, 0.2, 100) == 0.0
    assert drop_rate(50, 0.2, 100) == pytest.approx(0.1)
    assert drop_rate(100, 0.2, 100) == 0.2
    assert drop_rate(10**6, 0.2, 100) == 0.2


def test_truncated_loss_drops_the_planned_number_of_largest_loss_positives():
    scores = torch.tensor([[3.0, -1.0], [-4.0, 0.5], [0.0, -2.0], [-1.0, 1.0], [2.0, 0.0]])
    loss, kept = truncated_loss(scores, rate=0.2)
    n_dropped = math.floor(0.2 * scores.numel())  # 2 of 10 terms
    assert (~kept).sum() == n_dropped
    assert kept[:, 1:].all()  # negatives are never dropped
    # The two positives with the lowest logits carry the largest BCE.
    assert torch.equal(~kept[:, 0], torch.tensor([False, True, False, True, False]))
    terms = torch.nn.functional.binary_cross_entropy_with_logits(
        scores, torch.tensor([[1.0, 0.0]]).expand_as(scores), reduction="none")
    assert loss == pytest.approx(float(terms[kept].mean()))


def test_truncated_trainer_follows_the_schedule(data):
    trainer = trainer_for(data, "tce", "neumf", num_gradual=10, max_rate=0.3)
    trainer.train_epoch(0)
    assert trainer.step > 10 and trainer.last_rate == 0.3


def test_reweighted_loss_follows_its_formula():
    scores = torch.tensor([[1.5, -0.5, 2.0]])
    beta = 0.25
    loss, weights = reweighted_loss(scores, beta)
    p = torch.sigmoid(scores)
    expected = torch.stack([p[0, 0], 1 - p[0, 1], 1 - p[0, 2]]).pow(beta)
    assert torch.allclose(weights[0], expected)
    terms = torch.nn.functional.softplus(torch.tensor([-1.5, -0.5, 2.0]))
    assert loss == pytest.approx(float((expected * terms).mean()))


def test_pointwise_methods_reject_pairwise_models(data):
    with pytest.raises(ValueError, match="pointwise BCE loss"):
        trainer_for(data, "tce", "lightgcn")


def test_graph_methods_reject_other_models(data):
    with pytest.raises(ValueError, match="needs a graph model"):
        trainer_for(data, "sgl", "neumf")


def test_unknown_setting_names_the_closest_key(data):
    with pytest.raises(KeyError, match="max_rate"):
        trainer_for(data, "tce", "neumf", max_rat=0.1)
    with pytest.raises(KeyError, match="unknown normal setting"):
        trainer_for(data, "normal", "neumf", beta=1.0)


def test_wbpr_samples_negatives_in_proportion_to_popularity(data):
    trainer = trainer_for(data, "wbpr", "neumf")
    assert isinstance(trainer.sampler, PopularityNegativeSampler)
    train = data.train
    user = int(np.argmin(train.user_counts))
    draws = trainer.sampler.sample(np.full(60000, user), 1, np.random.default_rng(0)).ravel()
    mine = train.csr.items[train.csr.indptr[user]:train.csr.indptr[user + 1]]
    popularity = train.item_counts.astype(float)
    popularity[mine] = 0
    expected = popularity / popularity.sum()
    observed = np.bincount(draws, minlength=train.n_items) / draws.size
    assert observed[mine].sum() == 0
    assert np.corrcoef(observed, expected)[0, 1] > 0.98
    assert np.abs(observed - expected).max() < 0.01


def test_sgl_views_differ_and_share_all_nodes(data):
    trainer = trainer_for(data, "sgl", "lightgcn", rho=0.3)
    first, second = trainer.draw_views()
    assert first.shape == second.shape == trainer.adjacency.matrix().shape
    assert not torch.equal(first.csr.values(), second.csr.values())
    for view in (first, second):
        kept = view.csr.values() > 0
        assert 0.6 < float(kept.float().mean()) < 0.8
    # Same node indexing: the views' embeddings align row by row with the full graph's.
    full = torch.cat(trainer.graph.embeddings())
    assert full.shape[0] == trainer.adjacency.n_nodes


def test_info_nce_rewards_matching_views():
    torch.manual_seed(0)
    view = torch.randn(30, 8)
    nodes = torch.arange(5)
    same = info_nce(view, view, nodes, tau=0.2)
    shuffled = info_nce(view, view[torch.randperm(30)], nodes, tau=0.2)
    assert same < shuffled


def test_deca_losses_are_finite_and_its_auxiliary_models_update(data):
    trainer = trainer_for(data, "deca", "neumf")
    before = [p.detach().clone() for p in trainer.auxiliary.parameters()]
    noise_before = [p.detach().clone() for p in trainer.noise_models.parameters()]
    loss = trainer.train_epoch(0)
    assert math.isfinite(loss)
    assert any(not torch.equal(a, p) for a, p in zip(before, trainer.auxiliary.parameters()))
    assert any(not torch.equal(a, p)
               for a, p in zip(noise_before, trainer.noise_models.parameters()))


def test_deca_terms_match_the_formulas():
    p, q, h = torch.tensor([[0.7, 0.2]]), torch.tensor([[0.6, 0.3]]), torch.tensor([[0.1, 0.4]])
    labels = torch.tensor([[1.0, 0.0]])
    eps = 1e-5

    def kl(a, b):
        keep = a * math.log((a + eps) / (b + eps))
        return keep + (1 - a) * math.log((1 - a + eps) / (1 - b + eps))

    dp = deca_terms(p, q, h, labels, mode="dp", alpha=1.0, penalty=10.0)
    assert dp[0, 0] == pytest.approx(kl(0.6, 0.7) - 0.3 * math.log(0.1 + eps), rel=1e-5)
    assert dp[0, 1] == pytest.approx(
        kl(0.3, 0.2) - (0.8 * math.log(0.6 + eps) - 10.0 * 0.2), rel=1e-5)
    dn = deca_terms(p, q, h, labels, mode="dn", alpha=0.0, penalty=10.0)
    assert dn[0, 0] == pytest.approx(kl(0.7, 0.6) - (0.7 * math.log(0.1 + eps) - 10 * 0.3),
                                     rel=1e-5)
    assert dn[0, 1] == pytest.approx(kl(0.2, 0.3) - 0.2 * math.log(0.6 + eps), rel=1e-5)


class _FixedScores(torch.nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = table
        self.n_users, self.n_items = table.shape

    def score(self, users, items):
        return self.table[users.unsqueeze(-1), items].squeeze(-1)

    def score_all(self, users):
        return self.table[users]


def test_relabel_keeps_the_top_share_and_adds_the_best_unobserved_items():
    observed = Interactions([0] * 6 + [1] * 2, [0, 1, 2, 3, 4, 5, 0, 1], 2, 9)
    table = torch.tensor([
        [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 5.0, -1.0, 4.0],
        [0.5, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0],
    ])
    labels = relabel(_FixedScores(table), observed, pos_rate=0.5, neg_rate=0.5, plus=2)
    mine = {u: set(labels.items[labels.users == u].tolist()) for u in (0, 1)}
    assert mine[0] == {0, 2, 4, 6, 8}  # top half of 0..5, plus the two best unobserved
    assert 1 in mine[1] and 0 not in mine[1] and 8 in mine[1]


def test_ir_restarts_on_relabelled_positives(data):
    trainer = trainer_for(data, "ir", "neumf", rounds=2, epochs_per_round=1, plus=2)
    trainer.train_epoch(0)
    assert not trainer.may_stop
    first_model = trainer.model
    trainer.train_epoch(1)
    assert trainer.regime_changed and trainer.may_stop
    assert trainer.model is not first_model
    assert trainer.positives is not data.train
    assert trainer.diagnostics()["positives_per_round"][0] == len(data.train)


def test_sgcn_mask_is_binary_forward_and_trains_its_scorer(data):
    trainer = trainer_for(data, "sgcn", "lightgcn", init_keep_logit=0.0)
    batch = next(trainer.batches())
    trainer.model.train()
    loss = trainer.batch_loss(batch, "test")
    loss.backward()
    for mask in trainer.mask.masks:
        assert set(torch.unique(mask.detach()).tolist()) <= {0.0, 1.0}
    assert trainer.mask.scorer.weight.grad is not None
    assert trainer.mask.scorer.weight.grad.abs().sum() > 0
    trainer.model.eval()
    with torch.no_grad():
        first, second = trainer.model.score_all(torch.arange(3)), trainer.model.score_all(
            torch.arange(3))
    assert torch.equal(first, second)  # deterministic mask in evaluation


def test_sgcn_nuclear_norm_estimate_matches_the_dense_value_at_full_rank(data):
    trainer = trainer_for(data, "sgcn", "lightgcn")
    mask = torch.ones(trainer.mask.edge_users.numel())
    users, items = data.train.n_users, data.train.n_items
    estimate = trainer.mask.nuclear_norm_estimate(mask, rank=users)
    dense = torch.zeros(users, items)
    edge_values = trainer.mask.values[trainer.mask.forward_entries]
    dense[trainer.mask.edge_users, trainer.mask.edge_items - users] = edge_values
    assert float(estimate) == pytest.approx(float(torch.linalg.svdvals(dense).sum()), rel=1e-3)


def test_sgcn_nuclear_norm_estimate_and_its_gradient_match_the_dense_sketch(data):
    trainer = trainer_for(data, "sgcn", "lightgcn")
    edge_mask = trainer.mask.double()
    users, items = data.train.n_users, data.train.n_items
    mask = torch.rand(edge_mask.edge_users.numel(), dtype=torch.float64, requires_grad=True)

    def dense_sketch(mask):
        dense = torch.zeros(users, items, dtype=torch.float64)
        dense = dense.index_put((edge_mask.edge_users, edge_mask.edge_items - users),
                                edge_mask.values[edge_mask.forward_entries] * mask)
        probe = torch.randn(items, 8, dtype=torch.float64)
        basis, _ = torch.linalg.qr(dense @ probe)
        return torch.linalg.svdvals(dense.T @ basis).sum()

    torch.manual_seed(1)
    estimate = edge_mask.nuclear_norm_estimate(mask, rank=8)
    torch.manual_seed(1)
    expected = dense_sketch(mask)
    torch.testing.assert_close(estimate, expected)
    (grad,) = torch.autograd.grad(estimate, mask)
    (expected_grad,) = torch.autograd.grad(expected, mask)
    torch.testing.assert_close(grad, expected_grad)


def test_sgcn_keep_logits_are_the_scorer_on_endpoint_features(data):
    trainer = trainer_for(data, "sgcn", "lightgcn")
    mask = trainer.mask
    torch.manual_seed(0)
    nn.init.normal_(mask.scorer.weight)
    x = torch.randn(data.train.n_users + data.train.n_items, mask.dim, requires_grad=True)
    users, items = x[mask.edge_users], x[mask.edge_items]
    direct = mask.scorer(torch.cat([users, items, users * items], dim=1)).squeeze(1)
    logits = mask.logits(x)
    torch.testing.assert_close(logits, direct)
    upstream = torch.randn_like(logits)
    (grad,) = torch.autograd.grad(logits, x, upstream)
    (expected,) = torch.autograd.grad(direct, x, upstream)
    torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize("cls", [TCETrainer, RCETrainer, DeCATrainer, WBPRTrainer, IRTrainer,
                                 SGCNTrainer, SGLTrainer])
def test_every_baseline_is_registered(cls):
    assert METHODS[cls.name] is cls
