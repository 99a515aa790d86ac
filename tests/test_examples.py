"""The examples run as shipped (shortened)."""

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_custom_mf_runs_both_phases(capsys):
    metrics = _load("custom_mf").main(epochs=4)
    out = capsys.readouterr().out
    assert "memorization" in out and "self_guided" in out
    assert "per-sample gradients: modules" in out
    assert 0.0 <= metrics["recall@20"] <= 1.0


@pytest.mark.skipif(not (SHARED_DATA / "ml100k").is_dir(), reason="needs ../shared/data/ml100k")
def test_lightgcn_example_runs(capsys):
    metrics = _load("lightgcn_ml100k").main(["--data-dir", str(SHARED_DATA), "--epochs", "1"])
    assert "epoch 0 memorization" in capsys.readouterr().out
    assert 0.0 <= metrics["ndcg@20"] <= 1.0
