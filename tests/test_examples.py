"""The examples run as shipped (shortened)."""

from pathlib import Path

import pytest
from example_modules import load_example

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_custom_mf_runs_both_phases(capsys):
    metrics = load_example("custom_mf").main(epochs=4)
    out = capsys.readouterr().out
    assert "memorization" in out and "self_guided" in out
    assert "per-sample gradients: modules" in out
    assert 0.0 <= metrics["recall@20"] <= 1.0


@pytest.mark.skipif(not (SHARED_DATA / "ml100k").is_dir(), reason="needs ../shared/data/ml100k")
def test_lightgcn_example_runs(capsys):
    example = load_example("lightgcn_ml100k")
    metrics = example.main(["--data-dir", str(SHARED_DATA), "--epochs", "1"])
    assert "epoch 0 memorization" in capsys.readouterr().out
    assert 0.0 <= metrics["ndcg@20"] <= 1.0
