"""Gradient factors recorded from a model's modules (``per_sample_gradients="modules"``)."""

import pytest
import torch
from torch import nn

from sgdl_wrap import SGDLConfig, SGDLWrapper
from sgdl_wrap.adapters import BPRLoss
from sgdl_wrap.benchmarks.studies.custom_models import TowerMLP
from sgdl_wrap.data.datasets import make_synthetic
from sgdl_wrap.phase2.recorded import check_module_coverage, module_factors
from toy_models import TinyMF


def test_recorded_factors_name_every_parameter_and_score_as_the_model():
    torch.manual_seed(0)
    model = TowerMLP(6, 8, dim=4, hidden=5)
    users, items = torch.tensor([0, 3, 3]), torch.tensor([[1, 2], [4, 4], [0, 7]])
    scores, factors = module_factors(model, users, items)
    torch.testing.assert_close(scores, model.score(users, items))
    assert sorted(factors) == ["hidden.bias", "hidden.weight", "item.weight", "out.weight",
                               "user.weight"]
    # No hook is left behind on the model.
    assert all(not m._forward_hooks for m in model.modules())


class RawParameter(TinyMF):
    def __init__(self):
        super().__init__(6, 8)
        self.item_bias = nn.Parameter(torch.zeros(8))


class PaddedItems(TinyMF):
    def __init__(self):
        super().__init__(6, 8)
        self.item = nn.Embedding(8, 8, padding_idx=0)


def test_parameters_outside_recorded_modules_are_refused():
    with pytest.raises(TypeError, match=r"\['item_bias'\]"):
        check_module_coverage(RawParameter())
    with pytest.raises(TypeError, match="'item' uses padding_idx"):
        check_module_coverage(PaddedItems())
    train = make_synthetic(6, 8, interactions_per_user=3, seed=0).train
    with pytest.raises(TypeError, match="item_bias"):
        SGDLWrapper(RawParameter(), BPRLoss(), train=train,
                    config=SGDLConfig(per_sample_gradients="modules"))


class ItemTwice(TinyMF):
    def score(self, users, items):
        return super().score(users, items) + self.item(items).sum(-1)


class ItemTable(TowerMLP):
    """Runs its hidden layer over every item: not one output per sample."""

    def score(self, users, items):
        table = self.hidden(torch.cat([self.item.weight, self.item.weight], -1))
        return (self.user(users).unsqueeze(1) * self.item(items)).sum(-1) + self.out(
            table
        ).squeeze(-1)[items]


class UnusedLayer(TinyMF):
    def __init__(self):
        super().__init__(6, 8)
        self.head = nn.Linear(4, 1)


@pytest.mark.parametrize("model_cls, error, match", [
    (lambda: ItemTwice(6, 8), RuntimeError, "'item' was called twice"),
    (lambda: ItemTable(6, 8, dim=4, hidden=5), ValueError, r"'hidden' produced \(8, 5\)"),
    (UnusedLayer, RuntimeError, "'head' was not called"),
])
def test_calls_that_are_not_one_per_sample_are_refused(model_cls, error, match):
    model = model_cls()
    with pytest.raises(error, match=match):
        module_factors(model, torch.tensor([0, 1, 2]), torch.tensor([[1, 2], [3, 4], [5, 6]]))
    assert all(not m._forward_hooks for m in model.modules())


class BatchCentred(TinyMF):
    """Each sample's user row minus the batch mean: a sample's score depends on the others,
    which recorded factors cannot describe."""

    def score(self, users, items):
        rows = self.user(users)
        rows = rows - rows.mean(dim=0, keepdim=True)
        rows = rows.unsqueeze(1) if items.dim() == 2 else rows
        return (rows * self.item(items)).sum(-1)


@pytest.mark.parametrize("model_cls, strategy", [
    (lambda: TinyMF(6, 8), "modules"),
    (lambda: TowerMLP(6, 8, dim=4, hidden=5), "modules"),
    (lambda: BatchCentred(6, 8), "loop"),
    (RawParameter, "loop"),
])
def test_auto_records_factors_where_they_agree_with_the_loop(model_cls, strategy, caplog):
    data = make_synthetic(6, 8, interactions_per_user=3, seed=0)
    torch.manual_seed(0)
    model = model_cls()
    with caplog.at_level("INFO", logger="sgdl_wrap"):
        sgdl = SGDLWrapper(model, BPRLoss(), train=data.train)
    assert sgdl.per_sample_strategy == strategy
    assert ("exact loop (slow)" in caplog.text) == (strategy == "loop")
    assert all(not m._forward_hooks for m in model.modules())
