"""The README's usage example runs as printed, on the synthetic dataset instead of ML-100K."""

import re
from pathlib import Path

import sgdl_wrap.data
from sgdl_wrap.data.datasets import make_synthetic

README = Path(__file__).resolve().parents[1] / "README.md"


def _usage_example() -> str:
    usage = README.read_text().split("## Usage", 1)[1]
    return re.search(r"```python\n(.*?)```", usage, re.DOTALL).group(1)


def test_the_usage_example_runs_both_phases(monkeypatch, capsys):
    requested = []

    def synthetic_in_place_of(name, **kwargs):
        requested.append(name)
        return make_synthetic(seed=0)

    monkeypatch.setattr(sgdl_wrap.data, "load_dataset", synthetic_in_place_of)
    exec(compile(_usage_example(), str(README), "exec"), {})
    out = capsys.readouterr().out
    assert requested == ["ml100k"]
    assert "memorization" in out and "self_guided" in out
    assert "recall@20" in out
