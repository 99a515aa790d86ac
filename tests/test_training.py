import numpy as np
import torch

from sgdl_wrap import Interactions, UniformNegativeSampler, iterate_batches
from sgdl_wrap.adapters.losses import BPRLoss
from sgdl_wrap.metrics import evaluate
from sgdl_wrap.training import ModelSelector, train_epoch
from toy_models import TinyMF


def _block_data():
    # Two user groups, each liking one half of the items.
    users, items = [], []
    rng = np.random.default_rng(0)
    for u in range(40):
        half = np.arange(20) if u < 20 else np.arange(20, 40)
        chosen = rng.choice(half, 12, replace=False)
        users += [u] * 12
        items += chosen.tolist()
    data = Interactions(users, items, 40, 40)
    test_rows = np.arange(len(data)) % 6 == 0
    return data.select(~test_rows), data.select(test_rows)


def test_plain_training_learns_and_is_seeded():
    train, test = _block_data()

    def fit(seed):
        torch.manual_seed(seed)
        model = TinyMF(40, 40)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        rng = np.random.default_rng(seed)
        sampler = UniformNegativeSampler(train)
        losses = [train_epoch(model, BPRLoss(), optimizer,
                              iterate_batches(train, 32, sampler, 1, rng), epoch=e)
                  for e in range(15)]
        return model, losses

    model, losses = fit(0)
    assert losses[-1] < 0.5 * losses[0]
    assert evaluate(model, test, exclude=[train], ks=(10,))["recall@10"] > 0.5
    again, losses_again = fit(0)
    assert losses == losses_again
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)


def test_selector_keeps_the_best_checkpoint_and_stops():
    model = TinyMF(2, 2)
    selector = ModelSelector(metric="recall@5", patience=2)
    assert selector.update(0, {"recall@5": 0.1}, model)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.user.weight.add_(1.0)
    assert selector.update(1, {"recall@5": 0.3}, model)
    improved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.user.weight.add_(1.0)
    assert not selector.update(2, {"recall@5": 0.2}, model)
    assert not selector.should_stop
    assert not selector.update(3, {"recall@5": 0.3}, model)
    assert selector.should_stop and selector.best_epoch == 1
    selector.restore(model)
    assert all(torch.equal(model.state_dict()[k], improved[k]) for k in best)


def test_selector_restarts_its_patience_and_keeps_the_best():
    model = TinyMF(2, 2)
    selector = ModelSelector(metric="recall@5", patience=1)
    selector.update(0, {"recall@5": 0.3}, model)
    selector.update(1, {"recall@5": 0.2}, model)
    assert selector.should_stop
    selector.restart_patience()
    assert not selector.should_stop and selector.best_epoch == 0
    selector.update(2, {"recall@5": 0.1}, model)
    assert selector.should_stop
