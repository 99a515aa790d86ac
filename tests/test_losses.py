import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sgdl_wrap import Batch
from sgdl_wrap.adapters.losses import BCELoss, BPRLoss
from sgdl_wrap.losses import check_per_sample, per_sample_losses


def test_bce_is_the_sum_of_pointwise_terms():
    scores = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    expected = torch.stack([
        F.binary_cross_entropy_with_logits(scores[b], torch.tensor([1.0, 0.0, 0.0]),
                                           reduction="sum")
        for b in range(2)
    ])
    torch.testing.assert_close(BCELoss(2)(scores), expected)


def test_bce_candidate_losses_sum_to_the_per_sample_loss():
    scores = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    terms = BCELoss(2).candidate_losses(scores)
    assert terms.shape == (2, 3)
    torch.testing.assert_close(terms[:, 0], F.softplus(-scores[:, 0]))
    torch.testing.assert_close(terms.sum(dim=1), BCELoss(2)(scores))


def test_bpr_matches_its_formula():
    scores = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    expected = -torch.log(torch.sigmoid(scores[:, 0] - scores[:, 1]))
    torch.testing.assert_close(BPRLoss()(scores), expected)
    two = torch.tensor([[1.0, 0.0, 2.0]])
    pairs = (BPRLoss()(two[:, :2]) + BPRLoss()(two[:, [0, 2]])) / 2
    torch.testing.assert_close(BPRLoss(2)(two), pairs)


@pytest.mark.parametrize("loss", [BCELoss(1), BPRLoss(1)])
def test_losses_reject_wrong_shapes(loss):
    with pytest.raises(ValueError, match=r"expects scores of shape \[B, 2\]"):
        loss(torch.zeros(4, 3))
    assert loss(torch.zeros(4, 2)).shape == (4,)


def test_bpr_needs_a_negative():
    with pytest.raises(ValueError, match="at least one negative"):
        BPRLoss(0)


class _Dot(torch.nn.Module):
    n_users, n_items = 3, 4

    def __init__(self):
        super().__init__()
        self.u = torch.nn.Parameter(torch.randn(3, 2))
        self.i = torch.nn.Parameter(torch.randn(4, 2))

    def score(self, users, items):
        return (self.u[users].unsqueeze(-2) * self.i[items]).sum(-1) if items.dim() == 2 else (
            self.u[users] * self.i[items]).sum(-1)

    def score_all(self, users):
        return self.u[users] @ self.i.T


def _batch():
    as_long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
    return Batch(as_long([0, 1]), as_long([0, 2]), as_long([1, 3]), as_long([[0], [2]]))


def test_per_sample_losses_scores_once_and_checks():
    losses = per_sample_losses(_Dot(), BPRLoss(), _batch())
    assert losses.shape == (2,)
    with pytest.raises(ValueError, match="expects 2"):
        per_sample_losses(_Dot(), BPRLoss(2), _batch())


class _MeanBPR(BPRLoss):
    def __call__(self, scores):
        return super().__call__(scores).mean()


def test_scalar_and_nan_losses_are_usage_errors():
    with pytest.raises(ValueError, match="returned a scalar"):
        per_sample_losses(_Dot(), _MeanBPR(), _batch())
    with pytest.raises(ValueError, match=r"expected \[3\]"):
        check_per_sample(torch.zeros(2), 3)
    with pytest.raises(FloatingPointError, match="non-finite loss nan at sample 1 of epoch 2"):
        check_per_sample(torch.tensor([0.0, np.nan]), 2, where="epoch 2")
