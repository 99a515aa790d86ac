"""The full-size benchmark's synthetic train split, and the benchmark end to end."""

import json
from pathlib import Path

import numpy as np
import pytest

from sgdl_wrap import Interactions
from sgdl_wrap.benchmarks.studies import scale
from sgdl_wrap.data.datasets import Dataset
from sgdl_wrap.data.datasets.readers import InteractionRows

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rows(users, items, noisy=None):
    return InteractionRows(Path("rows"), np.asarray(users), np.asarray(items),
                           None if noisy is None else np.asarray(noisy))


def _splits(seed=0):
    rng = np.random.default_rng(seed)
    valid = _rows(rng.integers(0, 40, 300), rng.integers(0, 60, 300), rng.random(300) < 0.3)
    test = _rows(rng.integers(0, 40, 100), rng.integers(0, 60, 100))
    return valid, test


def test_train_rows_are_new_distinct_pairs_with_the_validation_noise_share():
    valid, test = _splits()
    rows = scale.draw_train_rows(40, 60, valid, test, 1500, seed=3)
    assert rows.shape == (1500, 3)
    users, items, clean = rows.T
    assert users.min() >= 0 and users.max() < 40 and items.min() >= 0 and items.max() < 60
    keys = users * 60 + items
    assert np.unique(keys).size == 1500
    taken = np.concatenate([valid.users * 60 + valid.items, test.users * 60 + test.items])
    assert not np.isin(keys, taken).any()
    assert set(np.unique(clean)) <= {0, 1}
    assert abs((1 - clean.mean()) - valid.noisy.mean()) < 0.05
    np.testing.assert_array_equal(rows, scale.draw_train_rows(40, 60, valid, test, 1500, seed=3))


def test_train_rows_follow_the_validation_popularity():
    valid = _rows(np.r_[np.zeros(500, int), np.arange(1, 50)],
                  np.r_[np.zeros(500, int), np.arange(1, 50)])
    test = _rows([], [])
    rows = scale.draw_train_rows(50, 50, valid, test, 400, seed=0)
    # User 0 holds about half of the validation rows (plus-one smoothing), so of the draws.
    assert (rows[:, 0] == 0).mean() > 0.1


def test_train_rows_that_cannot_fit_are_refused():
    valid, test = _splits()
    with pytest.raises(ValueError, match="do not fit a 40x60 id space"):
        scale.draw_train_rows(40, 60, valid, test, 40 * 60, seed=0)


def test_evaluation_time_is_projected_from_a_fixed_and_a_per_user_part(monkeypatch):
    keys = np.random.default_rng(0).choice(50 * 30, 400, replace=False)
    test = Interactions(keys // 30, keys % 30, 50, 30)
    data = Dataset("tiny", test, test, test)
    # Pretend ranking costs 2 s once plus 0.5 s per user.
    monkeypatch.setattr(scale, "_timed_evaluation",
                        lambda model, data, users: 2.0 + 0.5 * len(users))
    projected = scale.time_test_evaluation(None, data, 10, seed=0, budget_s=0.0)
    everyone = int((test.user_counts > 0).sum())
    assert projected["eval_projected"] and projected["eval_users"] == 10
    assert projected["eval_fixed_s"] == pytest.approx(2.0)
    assert projected["eval_per_user_s"] == pytest.approx(0.5)
    assert projected["eval_all_test_users_s"] == pytest.approx(2.0 + 0.5 * everyone)
    # The sample scaled up, 7 s * everyone / 10, is within this budget: everyone is timed.
    measured = scale.time_test_evaluation(None, data, 10, seed=0, budget_s=0.7 * everyone)
    assert not measured["eval_projected"] and measured["eval_users"] == everyone
    assert measured["eval_all_test_users_s"] == pytest.approx(2.0 + 0.5 * everyone)


@pytest.mark.skipif(not (SHARED_DATA / "yelp").is_dir(), reason="needs ../shared/data")
def test_scale_benchmark_runs_every_stage(tmp_path, monkeypatch):
    monkeypatch.setitem(scale.TRAIN_SIZES, "yelp", 5000)
    path = scale.main(["--dataset", "yelp", "--model", "neumf", "--threads", "1",
                       "--warmup", "1", "--batches", "2", "--eval-users", "3", "--eval-budget", "0",
                       "--data-dir", str(SHARED_DATA), "--results-dir", str(tmp_path)])
    record = json.loads(path.read_text())
    assert record["synthetic_train"]["rows"] == 5000
    result = record["models"]["neumf"]
    assert result["batches_per_epoch"] == 3 and result["batches_timed"] == 2
    assert result["eval_all_test_users_s"] > 0 and result["eval_per_user_s"] >= 0
    assert result["phase2_over_normal"] > 0 and result["peak_mib"] > 0
    assert "Phase II / Normal" in path.with_suffix(".md").read_text()
