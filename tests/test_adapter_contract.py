"""Contract tests for the reference adapters, and tests of the graph propagation kernel.

:class:`AdapterContract` checks what ``sgdl_wrap`` relies on in any model. To check your own
adapter, subclass it in a ``Test*`` class and implement ``make_model(train)``.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import re
from typing import Any

import numpy as np
import pytest
import torch
from example_modules import load_example
from torch import Tensor, nn
from torch.func import functional_call

from sgdl_wrap import Interactions, PerSampleLoss, Recommender
from sgdl_wrap.adapters import (
    CDAE,
    NGCF,
    BCELoss,
    BPRLoss,
    LightGCN,
    NeuMF,
    NormalizedAdjacency,
    SparseMatrix,
    sparse_matmul,
)
from sgdl_wrap.adapters.graph import symmetric_sampled_dot, symmetric_weighted_matmul
from sgdl_wrap.benchmarks.studies.custom_models import TowerMLP
from sgdl_wrap.data.sampling import UniformNegativeSampler
from sgdl_wrap.metrics import evaluate
from sgdl_wrap.phase1.memorization import memorization_pass
from sgdl_wrap.phase2.features import SupportsGradientFactors
from sgdl_wrap.phase2.gradient_check import check_gradient_factors
from sgdl_wrap.phase2.recorded import check_module_coverage
from sgdl_wrap.protocols import scoring_pass

# An nn.Module implementing sgdl_wrap.Recommender; no static type expresses both.
Adapter = Any

NUM_NEGATIVES = 2
LOSSES = [BCELoss(NUM_NEGATIVES), BPRLoss(NUM_NEGATIVES)]


def tiny_interactions(
    n_users: int = 30, n_items: int = 40, n: int = 300, seed: int = 0
) -> Interactions:
    """``n`` distinct random pairs; the last user and the last item get no interaction."""
    rng = np.random.default_rng(seed)
    keys = rng.choice((n_users - 1) * (n_items - 1), size=n, replace=False)
    return Interactions(keys // (n_items - 1), keys % (n_items - 1), n_users, n_items)


def sample_batch(train: Interactions, size: int = 16, seed: int = 1) -> tuple[Tensor, Tensor]:
    """Training rows with random negatives: users ``[size]``, candidates ``[size, 1 + k]``."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(train), size=size, replace=False)
    negatives = rng.integers(0, train.n_items, size=(size, NUM_NEGATIVES))
    candidates = np.concatenate([train.items[rows, None], negatives], axis=1)
    return torch.from_numpy(train.users[rows]), torch.from_numpy(candidates)


def meta_gradient(model: Adapter, loss: PerSampleLoss, users: Tensor, items: Tensor) -> Tensor:
    """SGDL's look-ahead: the gradient w.r.t. per-sample weights ``[B]`` of the loss after one
    SGD step on the weighted loss, which differentiates through a gradient."""
    weights = torch.full((users.shape[0],), 0.5, device=users.device, requires_grad=True)
    names, params = zip(*model.named_parameters(), strict=True)
    weighted = (weights * loss(model.score(users, items))).mean()
    grads = torch.autograd.grad(weighted, params, create_graph=True)
    stepped = {name: p - 0.1 * g for name, p, g in zip(names, params, grads, strict=True)}
    meta = loss(functional_call(model, stepped, (users, items))).mean()
    (gradient,) = torch.autograd.grad(meta, weights)
    return gradient


class AdapterContract:
    """Checks every model must pass. Subclasses implement :meth:`make_model`.

    Set ``supports_vmap = False`` for models whose ``score`` cannot run under
    ``torch.func.vmap`` (data-dependent shapes), which then skip the per-sample test.
    """

    supports_vmap = True

    def make_model(self, train: Interactions) -> nn.Module:
        raise NotImplementedError

    @pytest.fixture
    def train(self) -> Interactions:
        return tiny_interactions()

    @pytest.fixture
    def model(self, train: Interactions) -> Adapter:
        torch.manual_seed(0)
        return self.make_model(train)

    def test_is_a_recommender(self, model: Adapter, train: Interactions) -> None:
        assert isinstance(model, Recommender)
        assert (model.n_users, model.n_items) == (train.n_users, train.n_items)

    def test_score_shapes(self, model: Adapter, train: Interactions) -> None:
        users, candidates = sample_batch(train)
        pairs = model.score(users, candidates[:, 0])
        assert pairs.shape == users.shape and pairs.dtype.is_floating_point
        lists = model.score(users, candidates)
        assert lists.shape == candidates.shape and lists.dtype.is_floating_point
        assert model.score_all(users).shape == (users.shape[0], train.n_items)

    def test_score_all_matches_score(self, model: Adapter, train: Interactions) -> None:
        model.eval()
        users = torch.arange(train.n_users)
        all_items = torch.arange(train.n_items).expand(train.n_users, -1)
        with torch.no_grad():
            expected = model.score(users, all_items)
            torch.testing.assert_close(model.score_all(users), expected, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(
                model.score(users, all_items[:, 3]), expected[:, 3], rtol=1e-5, atol=1e-5
            )

    def test_eval_is_deterministic(self, model: Adapter, train: Interactions) -> None:
        model.eval()
        users, candidates = sample_batch(train)
        with torch.no_grad():
            torch.testing.assert_close(
                model.score(users, candidates), model.score(users, candidates), rtol=0, atol=0
            )

    def test_scoring_pass_scores_as_outside_it(self, model: Adapter, train: Interactions) -> None:
        model.eval()
        users, candidates = sample_batch(train)
        with torch.no_grad():
            pairs, every_item = model.score(users, candidates), model.score_all(users)
            with scoring_pass(model):
                torch.testing.assert_close(model.score(users, candidates), pairs, rtol=0, atol=0)
                with scoring_pass(model):
                    torch.testing.assert_close(model.score_all(users), every_item, rtol=0,
                                               atol=0)
                torch.testing.assert_close(model.score_all(users), every_item, rtol=0, atol=0)
            # Outside the pass the model reads its parameters again.
            for parameter in model.parameters():
                parameter.mul_(2.0)
            assert not torch.equal(model.score_all(users), every_item)

    def test_functional_call_swaps_parameters(self, model: Adapter, train: Interactions) -> None:
        model.eval()
        users, candidates = sample_batch(train)
        with torch.no_grad():
            before = model.score(users, candidates)
        torch.manual_seed(1)
        swapped = {name: torch.randn_like(p) * 0.1 for name, p in model.named_parameters()}
        twin = copy.deepcopy(model)  # after a call, so that any cached fixed data is copied
        twin.load_state_dict(swapped)
        with torch.no_grad():
            result = functional_call(model, swapped, (users, candidates))
            torch.testing.assert_close(result, twin.score(users, candidates))
            # Nothing derived from the swapped parameters may linger in the model.
            torch.testing.assert_close(model.score(users, candidates), before, rtol=0, atol=0)

    @pytest.mark.parametrize("loss", LOSSES, ids=repr)
    def test_gradients_reach_every_parameter(
        self, model: Adapter, train: Interactions, loss: PerSampleLoss
    ) -> None:
        model.train()
        users, candidates = sample_batch(train, size=64)
        loss(model.score(users, candidates)).mean().backward()
        for name, param in model.named_parameters():
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name
            assert param.grad.abs().sum() > 0, name

    def test_second_order_gradients(self, model: Adapter, train: Interactions) -> None:
        users, candidates = sample_batch(train)
        gradient = meta_gradient(model, BPRLoss(NUM_NEGATIVES), users, candidates)
        assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0

    def test_per_sample_gradients_with_vmap(self, model: Adapter, train: Interactions) -> None:
        if not self.supports_vmap:
            pytest.skip("this model's score has data-dependent shapes")
        model.eval()
        loss = BCELoss(NUM_NEGATIVES)
        users, candidates = sample_batch(train, size=4)
        params = {name: p.detach() for name, p in model.named_parameters()}

        def sample_loss(params: dict[str, Tensor], user: Tensor, items: Tensor) -> Tensor:
            return loss(functional_call(model, params, (user[None], items[None])))[0]

        per_sample_grad = torch.func.vmap(torch.func.grad(sample_loss), in_dims=(None, 0, 0))
        per_sample = per_sample_grad(params, users, candidates)
        for k in range(users.shape[0]):
            model.zero_grad()
            loss(model.score(users[k : k + 1], candidates[k : k + 1])).sum().backward()
            for name, param in model.named_parameters():
                torch.testing.assert_close(per_sample[name][k], param.grad, msg=name)

    @pytest.mark.parametrize("loss", LOSSES, ids=repr)
    def test_gradient_factors_agree_with_the_loop(
        self, model: Adapter, train: Interactions, loss: PerSampleLoss
    ) -> None:
        users, candidates = sample_batch(train, size=12)
        users[1], candidates[1] = users[0], candidates[0]  # a repeated sample
        if not isinstance(model, SupportsGradientFactors):
            # Without the hook, SGDL records the factors from the model's modules if it can.
            try:
                check_module_coverage(model)
            except TypeError as reason:
                pytest.skip(f"no per_sample_factors hook, no recordable modules: {reason}")
            # 1e-6, not 1e-8: where a ReLU layer's bias gradient cancels within a BPR sample
            # (every candidate in the same linear region), both cosines are of rounding
            # noise, a few 1e-7 apart for this model.
            check_gradient_factors(model.double(), loss, users, candidates, atol=1e-6,
                                   source="modules")
            return
        agreement = check_gradient_factors(model.double(), loss, users, candidates, atol=1e-8)
        assert agreement.factor.shape == agreement.loop.shape == (12, len(agreement.names))
        assert torch.isfinite(agreement.factor).all()
        model.eval()
        scores, _ = model.per_sample_factors(users, candidates)
        torch.testing.assert_close(scores, model.score(users, candidates), rtol=0, atol=0)


class ReferenceAdapterContract(AdapterContract):
    """:class:`AdapterContract` plus the input checks of every model in ``adapters/``. SGDL
    does not rely on them (it validates training rows itself), so a model of your own need
    not pass these."""

    def test_rejects_bad_ids(self, model: Adapter, train: Interactions) -> None:
        users, candidates = sample_batch(train, size=4)
        bad_items = candidates.clone()
        bad_items[1, 1] = train.n_items
        with pytest.raises(ValueError, match=f"item id {train.n_items} is out of range"):
            model.score(users, bad_items)
        bad_users = users.clone()
        bad_users[0] = -1
        message = re.escape(f"user id -1 is out of range [0, {train.n_users})")
        with pytest.raises(ValueError, match=message):
            model.score(bad_users, candidates)
        with pytest.raises(ValueError, match=f"user id {train.n_users} is out of range"):
            model.score_all(torch.tensor([train.n_users]))
        with pytest.raises(ValueError, match="shape"):
            model.score(users, candidates[:, :, None])
        with pytest.raises(ValueError, match="shape"):
            model.score(users[:2], candidates)
        with pytest.raises(ValueError, match="shape"):
            model.score(users[:, None], candidates)

    def test_rejects_bad_ids_under_vmap(self, model: Adapter, train: Interactions) -> None:
        if not self.supports_vmap:
            pytest.skip("this model's score has data-dependent shapes")
        users, candidates = sample_batch(train, size=4)
        candidates[2, 1] = train.n_items
        params = {name: p.detach() for name, p in model.named_parameters()}

        def sample_scores(user: Tensor, items: Tensor) -> Tensor:
            return functional_call(model, params, (user[None], items[None]))[0]

        with pytest.raises(ValueError, match=f"item id {train.n_items} is out of range"):
            torch.func.vmap(sample_scores)(users, candidates)


class TestNeuMF(ReferenceAdapterContract):
    def make_model(self, train: Interactions) -> nn.Module:
        # Dropout exercises the per-candidate masks on the user half of the MLP.
        return NeuMF(train.n_users, train.n_items, dropout=0.2)


class TestCDAE(ReferenceAdapterContract):
    supports_vmap = False

    def make_model(self, train: Interactions) -> nn.Module:
        return CDAE(train)


class TestNGCF(ReferenceAdapterContract):
    def make_model(self, train: Interactions) -> nn.Module:
        return NGCF(train)


class TestLightGCN(ReferenceAdapterContract):
    def make_model(self, train: Interactions) -> nn.Module:
        return LightGCN(train)


class TestRecordedFactorsModel(AdapterContract):
    def make_model(self, train: Interactions) -> nn.Module:
        return TowerMLP(train.n_users, train.n_items, dim=6, hidden=5)


class TestExampleModel(AdapterContract):
    """The model of ``examples/custom_mf.py``, the template for a model of your own."""

    def make_model(self, train: Interactions) -> nn.Module:
        return load_example("custom_mf").MF(train.n_users, train.n_items, dim=6)


# --- graph propagation -------------------------------------------------------------------


def dense_normalized_adjacency(train: Interactions) -> Tensor:
    """``D^-1/2 A D^-1/2`` ``[N, N]`` straight from the definition, in float64."""
    n = train.n_users + train.n_items
    adjacency = np.zeros((n, n))
    adjacency[train.users, train.n_users + train.items] = 1.0
    adjacency += adjacency.T
    degree = adjacency.sum(axis=1)
    scale = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1.0)), 0.0)
    return torch.from_numpy(scale[:, None] * adjacency * scale[None, :])


@pytest.fixture
def small_graph() -> Interactions:
    return tiny_interactions(n_users=7, n_items=6, n=15, seed=3)


@pytest.mark.parametrize("make_model", [LightGCN, NGCF])
def test_evaluation_and_memorization_test_propagate_once(
    make_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = tiny_interactions()
    torch.manual_seed(0)
    model = make_model(train)
    propagations = []
    embeddings = model.embeddings
    monkeypatch.setattr(model, "embeddings",
                        lambda *args: propagations.append(args) or embeddings(*args))
    metrics = evaluate(model, train, batch_size=4)
    assert len(propagations) == 1
    with monkeypatch.context() as patch:
        patch.setattr("sgdl_wrap.metrics.scoring_pass", lambda model: contextlib.nullcontext())
        assert evaluate(model, train, batch_size=4) == metrics
    assert len(propagations) == 1 + -(-int((train.user_counts > 0).sum()) // 4)
    propagations.clear()
    memorization_pass(model, BPRLoss(), train, UniformNegativeSampler(train),
                      np.random.default_rng(0), batch_size=16)
    memorization_pass(model, BPRLoss(), train, UniformNegativeSampler(train),
                      np.random.default_rng(0), test="full", user_batch_size=4)
    assert len(propagations) == 2


def test_normalized_adjacency_matches_definition() -> None:
    train = tiny_interactions()
    adjacency = NormalizedAdjacency(train).double()
    dense = adjacency.matrix().csr.to_dense()
    torch.testing.assert_close(dense, dense_normalized_adjacency(train))
    assert adjacency.values.shape == (2 * len(train),)
    # The user and the item without interactions are isolated nodes.
    assert dense[train.n_users - 1].abs().sum() == 0 and dense[-1].abs().sum() == 0


def test_matrix_follows_the_buffers(small_graph: Interactions) -> None:
    adjacency = NormalizedAdjacency(small_graph)
    assert adjacency.matrix() is adjacency.matrix()
    assert adjacency.matrix().csr.dtype == torch.float32
    assert adjacency.double().matrix().csr.dtype == torch.float64


def test_matmul_matches_dense() -> None:
    train = tiny_interactions()
    adjacency = NormalizedAdjacency(train).double()
    x = torch.randn(adjacency.n_nodes, 5, dtype=torch.float64)
    torch.testing.assert_close(adjacency.matmul(x), dense_normalized_adjacency(train) @ x)


def test_matmul_gradcheck_and_gradgradcheck(small_graph: Interactions) -> None:
    adjacency = NormalizedAdjacency(small_graph).double()
    x = torch.randn(adjacency.n_nodes, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(adjacency.matmul, (x,))
    assert torch.autograd.gradgradcheck(adjacency.matmul, (x,))


def test_matmul_under_torch_func(small_graph: Interactions) -> None:
    adjacency = NormalizedAdjacency(small_graph).double()
    dense = dense_normalized_adjacency(small_graph)
    xs = torch.randn(4, adjacency.n_nodes, 3, dtype=torch.float64)
    batched = torch.func.vmap(adjacency.matmul)(xs)
    torch.testing.assert_close(batched, torch.stack([dense @ x for x in xs]))

    def energy(x: Tensor) -> Tensor:
        return (adjacency.matmul(x) ** 3).sum()

    # d/dx sum((A x)^3) = 3 A (A x)^2, and its Jacobian needs the double backward.
    x = xs[0]
    torch.testing.assert_close(torch.func.grad(energy)(x), 3 * dense @ (dense @ x) ** 2)
    hessian = torch.func.jacrev(torch.func.grad(energy))(x)
    torch.testing.assert_close(hessian, torch.autograd.functional.hessian(energy, x))


def random_sparse(n_rows: int, n_cols: int, density: float = 0.3) -> tuple[SparseMatrix, Tensor]:
    """A random non-symmetric :class:`SparseMatrix` (entries given unsorted) and its dense
    float64 equal."""
    dense = torch.rand(n_rows, n_cols, dtype=torch.float64)
    dense = dense * (torch.rand(n_rows, n_cols) < density)
    rows, cols = dense.nonzero().T
    order = torch.randperm(rows.numel())
    rows, cols = rows[order], cols[order]
    return SparseMatrix.from_coo(rows, cols, dense[rows, cols], (n_rows, n_cols)), dense


def test_sparse_matmul_with_a_general_matrix() -> None:
    torch.manual_seed(0)
    matrix, dense = random_sparse(6, 9)
    torch.testing.assert_close(matrix.transpose.csr.to_dense(), dense.T)
    assert matrix.transpose.transpose is matrix
    x = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(sparse_matmul(matrix, x), dense @ x)
    assert torch.autograd.gradcheck(lambda x: sparse_matmul(matrix, x), (x,))
    assert torch.autograd.gradgradcheck(lambda x: sparse_matmul(matrix, x), (x,))
    xs = torch.randn(4, 9, 3, dtype=torch.float64)
    batched = torch.func.vmap(lambda x: sparse_matmul(matrix, x))(xs)
    torch.testing.assert_close(batched, dense @ xs)


def test_sparse_matrix_survives_copy_and_pickle() -> None:
    general, dense = random_sparse(5, 7)
    symmetric = NormalizedAdjacency(tiny_interactions()).matrix()
    for matrix in (general, symmetric):
        for clone in (copy.deepcopy(matrix), pickle.loads(pickle.dumps(matrix))):
            torch.testing.assert_close(clone.csr.to_dense(), matrix.csr.to_dense())
            torch.testing.assert_close(
                clone.transpose.csr.to_dense(), matrix.transpose.csr.to_dense()
            )
            assert (clone.transpose is clone) == (matrix.transpose is matrix)


def test_matmul_rejects_bad_inputs(small_graph: Interactions) -> None:
    adjacency = NormalizedAdjacency(small_graph)
    x = torch.randn(adjacency.n_nodes, 3)
    with pytest.raises(ValueError, match="shape"):
        adjacency.matmul(x[1:])
    with pytest.raises(TypeError, match="dtype"):
        adjacency.matmul(x.double())
    with pytest.raises(TypeError, match="SparseMatrix"):
        sparse_matmul(adjacency.matrix().csr, x)  # type: ignore[arg-type]


def test_edge_dropout_is_symmetric_and_rescaled() -> None:
    adjacency = NormalizedAdjacency(tiny_interactions())
    full = adjacency.matrix().csr.to_dense()
    torch.manual_seed(0)
    dropped = adjacency.edge_dropout(0.5).csr.to_dense()
    torch.testing.assert_close(dropped, dropped.T, rtol=0, atol=0)
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], 2.0 * full[kept])
    assert 0.3 < kept.sum() / (full != 0).sum() < 0.7
    assert adjacency.edge_dropout(0.0) is adjacency.matrix()
    with pytest.raises(ValueError, match="rate"):
        adjacency.edge_dropout(1.0)


def test_transposed_entries_pair_each_entry_with_its_mirror(small_graph: Interactions) -> None:
    adjacency = NormalizedAdjacency(small_graph)
    rows, cols, _, edge_ids = adjacency.edge_list()
    transposed = adjacency.transposed_entries()
    assert torch.equal(rows[transposed], cols) and torch.equal(cols[transposed], rows)
    assert torch.equal(edge_ids[transposed], edge_ids)


def test_symmetric_weighted_matmul_matches_dense_and_gradchecks(
    small_graph: Interactions,
) -> None:
    adjacency = NormalizedAdjacency(small_graph).double()
    crow, cols = adjacency.crow_indices, adjacency.col_indices
    values = torch.rand(cols.numel(), dtype=torch.float64)
    values = (values + values[adjacency.transposed_entries()]).requires_grad_()  # symmetric
    x = torch.randn(adjacency.n_nodes, 3, dtype=torch.float64, requires_grad=True)
    dense = torch.sparse_csr_tensor(crow, cols, values.detach(), (adjacency.n_nodes,) * 2,
                                    check_invariants=True)
    torch.testing.assert_close(symmetric_weighted_matmul(crow, cols, values, x),
                               dense.to_dense() @ x)
    assert torch.autograd.gradcheck(
        lambda v, y: symmetric_weighted_matmul(crow, cols, v, y), (values, x)
    )


def test_symmetric_sampled_dot_matches_dense_and_gradchecks(small_graph: Interactions) -> None:
    adjacency = NormalizedAdjacency(small_graph).double()
    crow, cols = adjacency.crow_indices, adjacency.col_indices
    rows = adjacency.edge_list().rows
    transposed = adjacency.transposed_entries()
    a = torch.randn(adjacency.n_nodes, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(adjacency.n_nodes, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(symmetric_sampled_dot(crow, cols, transposed, a, b),
                               (a[rows] * b[cols]).sum(1))
    assert torch.autograd.gradcheck(
        lambda p, q: symmetric_sampled_dot(crow, cols, transposed, p, q), (a, b)
    )
    with pytest.raises(ValueError, match="a and b"):
        symmetric_sampled_dot(crow, cols, transposed, a, b[:, :2])
    with pytest.raises(ValueError, match="transposed"):
        symmetric_sampled_dot(crow, cols, transposed[1:], a, b)


def test_lightgcn_second_order_gradient_matches_dense() -> None:
    train = tiny_interactions()
    torch.manual_seed(0)
    model = LightGCN(train).double()
    users, candidates = sample_batch(train)
    loss = BPRLoss(NUM_NEGATIVES)
    sparse = meta_gradient(model, loss, users, candidates)
    dense = dense_normalized_adjacency(train)
    model.adjacency.matmul = lambda x, matrix=None: dense @ x  # type: ignore[method-assign]
    torch.testing.assert_close(sparse, meta_gradient(model, loss, users, candidates))


def test_sparse_models_follow_dtype() -> None:
    train = tiny_interactions()
    users, candidates = sample_batch(train)
    for model in (LightGCN(train).double(), NGCF(train).double(), CDAE(train).double()):
        assert model.score(users, candidates).dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_graph_code_on_cuda_matches_cpu() -> None:
    train = tiny_interactions()
    on_cpu, on_cuda = NormalizedAdjacency(train), NormalizedAdjacency(train).cuda()
    x = torch.randn(on_cpu.n_nodes, 8, requires_grad=True)
    x_cuda = x.detach().cuda().requires_grad_()
    (on_cpu.matmul(x) ** 2).sum().backward()
    (on_cuda.matmul(x_cuda) ** 2).sum().backward()
    assert x_cuda.grad is not None
    torch.testing.assert_close(x_cuda.grad.cpu(), x.grad)
    dropped = on_cuda.edge_dropout(0.3).csr.to_dense()
    torch.testing.assert_close(dropped, dropped.T, rtol=0, atol=0)
    users, candidates = sample_batch(train)
    for make_model in (LightGCN, NGCF, CDAE):
        torch.manual_seed(0)
        model = make_model(train).eval()
        expected = meta_gradient(model, BPRLoss(NUM_NEGATIVES), users, candidates)
        model.cuda()
        result = meta_gradient(model, BPRLoss(NUM_NEGATIVES), users.cuda(), candidates.cuda())
        torch.testing.assert_close(result.cpu(), expected, rtol=1e-4, atol=1e-6)
