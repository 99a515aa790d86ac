import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdl_wrap.phase1.memory_bank import MemoryBank
from sgdl_wrap.phase1.noise import estimate_noise_rate, normalize_per_user


@given(st.integers(1, 40), st.integers(1, 6), st.integers(0, 15), st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_ring_buffer_keeps_the_last_h_epochs(n_rows, history, epochs, seed):
    rng = np.random.default_rng(seed)
    marks = rng.random((epochs, n_rows)) < 0.5
    paper = MemoryBank(n_rows, history, "paper")
    authors = MemoryBank(n_rows, history, "authors")
    for epoch in marks:
        paper.record(epoch)
        authors.record(epoch)
    recent = marks[-history:] if epochs else np.zeros((0, n_rows), bool)
    counts = recent.sum(axis=0)
    assert paper.counts().tolist() == counts.tolist()
    assert paper.filled == min(epochs, history)
    expected_paper = counts / max(len(recent), 1) > 0.5 if epochs else np.zeros(n_rows, bool)
    assert paper.memorized().tolist() == expected_paper.tolist()
    assert authors.memorized().tolist() == (counts >= history / 2).tolist()


def test_authors_rule_counts_unfilled_slots_as_zero():
    bank = MemoryBank(3, 10, "authors")
    for epoch in range(5):
        bank.record(np.array([True, True, False]))
        assert bank.memorized().tolist() == ([True, True, False] if epoch == 4 else [False] * 3)
    paper = MemoryBank(3, 10, "paper")
    paper.record(np.array([True, False, False]))
    assert paper.memorized().tolist() == [True, False, False]


def test_bank_state_round_trip_and_errors():
    bank = MemoryBank(11, 3)
    for seed in range(4):
        bank.record(np.random.default_rng(seed).random(11) < 0.5)
    copy = MemoryBank(11, 3)
    copy.load_state_dict(bank.state_dict())
    assert copy.counts().tolist() == bank.counts().tolist()
    copy.record(np.ones(11, bool))
    bank.record(np.ones(11, bool))
    assert copy.memorized().tolist() == bank.memorized().tolist()
    with pytest.raises(ValueError, match="bool vector of shape"):
        bank.record(np.ones(10, bool))
    with pytest.raises(ValueError, match="unknown threshold rule"):
        MemoryBank(3, 2, "majority")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="this bank is"):
        MemoryBank(11, 4).load_state_dict(bank.state_dict())


def test_per_user_min_max():
    normalized = normalize_per_user([1.0, 3.0, 2.0, 5.0, 5.0], [0, 0, 0, 1, 1], 3)
    np.testing.assert_allclose(normalized, [0.0, 1.0, 0.5, 0.0, 0.0])
    with pytest.raises(FloatingPointError, match="row 1"):
        normalize_per_user([1.0, np.nan], [0, 0], 1)


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.35])
def test_gmm_recovers_a_planted_noise_rate(rate):
    rng = np.random.default_rng(0)
    n = 20_000
    noisy = rng.random(n) < rate
    losses = np.where(noisy, rng.normal(0.75, 0.08, n), rng.normal(0.25, 0.1, n)).clip(0, 1)
    estimate = estimate_noise_rate(losses)
    assert abs(estimate.rate - rate) < 0.05
    assert estimate.means[0] < estimate.means[1]
    assert ((estimate.posterior > 0.5) == noisy).mean() > 0.95
