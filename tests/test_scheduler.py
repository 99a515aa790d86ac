"""The adaptive denoising scheduler: scorers, straight-through Gumbel and REINFORCE draws."""

import pytest
import torch
from torch import nn

from sgdl_wrap.phase2.scheduler import DenoisingScheduler, _final_states


@pytest.mark.parametrize("steps", [1, 2, 3, 12])
def test_lstm_summary_equals_nn_lstm(steps):
    torch.manual_seed(steps)
    lstm = nn.LSTM(1, 10, batch_first=True, bidirectional=True).double()
    sequences = torch.randn(7, steps, dtype=torch.float64, requires_grad=True)
    _, (state, _) = lstm(sequences.unsqueeze(-1))
    expected = state.transpose(0, 1).reshape(7, -1)
    got = _final_states(lstm, sequences)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    weights = torch.randn_like(got)
    params = [sequences, *lstm.parameters()]
    # With one step the recurrent weights meet only the zero initial state.
    grads = torch.autograd.grad((got * weights).sum(), params, materialize_grads=True)
    expected_grads = torch.autograd.grad((expected * weights).sum(), params)
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-12)


def _features(m=9, p=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(m, generator=generator), torch.rand(m, p, generator=generator) * 2 - 1


@pytest.mark.parametrize("scorer", ["lstm", "mlp"])
def test_gumbel_draws_are_one_hot_forward_and_reach_the_scorer(scorer):
    torch.manual_seed(0)
    scheduler = DenoisingScheduler(scorer, 3, tau=0.5)
    losses, cosines = _features()
    selection = scheduler.select(losses, cosines, 20, torch.Generator().manual_seed(1))
    counts = selection.counts.detach()
    assert selection.log_prob is None
    torch.testing.assert_close(counts, counts.round(), rtol=0, atol=1e-5)
    assert counts.min() >= -1e-5 and float(counts.sum()) == pytest.approx(20.0)
    meta_losses = torch.arange(9, dtype=torch.float32)
    (selection.counts * meta_losses).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in scheduler.parameters())


def test_draws_follow_the_generator():
    scheduler = DenoisingScheduler("mlp", 3)
    losses, cosines = _features()
    first = scheduler.select(losses, cosines, 50, torch.Generator().manual_seed(3)).counts
    again = scheduler.select(losses, cosines, 50, torch.Generator().manual_seed(3)).counts
    other = scheduler.select(losses, cosines, 50, torch.Generator().manual_seed(4)).counts
    torch.testing.assert_close(first, again)
    assert not torch.equal(first, other)


def test_reinforce_counts_draws_and_rewards_low_meta_loss():
    torch.manual_seed(0)
    scheduler = DenoisingScheduler("mlp", 3, sampling="reinforce")
    losses, cosines = _features()
    selection = scheduler.select(losses, cosines, 30, torch.Generator().manual_seed(0))
    assert torch.equal(selection.counts, selection.counts.round())
    assert int(selection.counts.sum()) == 30
    assert selection.log_prob is not None
    surrogate = scheduler.reinforce_loss(selection, torch.tensor(2.0))
    surrogate.backward()
    assert float(scheduler.baseline) == pytest.approx(-0.2)
    assert all(p.grad is not None for p in scheduler.parameters())
    plain = DenoisingScheduler("mlp", 3).select(losses, cosines, 30, torch.Generator())
    with pytest.raises(ValueError, match="reinforce"):
        scheduler.reinforce_loss(plain, torch.tensor(1.0))


def test_top_f_keeps_the_best_ranked_half():
    scheduler = DenoisingScheduler("top_f", 2)
    assert not scheduler.trainable and not list(scheduler.parameters())
    losses = torch.tensor([0.0, 1.0, 0.5, 0.2])
    cosines = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [0.0, 0.0], [0.9, 0.9]])
    # Normalised loss + mean cosine: 1.0, 0.0, 0.5, 1.1 -> keep rows 3 and 0.
    counts = scheduler.select(losses, cosines, 8, torch.Generator()).counts
    torch.testing.assert_close(counts, torch.tensor([4.0, 0.0, 0.0, 4.0]))


def test_invalid_settings_are_named():
    with pytest.raises(ValueError, match="tau"):
        DenoisingScheduler("lstm", 2, tau=0.0)
    with pytest.raises(ValueError, match="'gru'"):
        DenoisingScheduler("gru", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'softmax'"):
        DenoisingScheduler("mlp", 2, sampling="softmax")  # type: ignore[arg-type]
