"""An interrupted benchmark run continues after its last finished epoch and ends as an
uninterrupted run does."""

import pickle

import pytest
import torch

from sgdl_wrap.benchmarks.running.checkpoint import load_checkpoint, save_checkpoint
from sgdl_wrap.benchmarks.running.methods import METHODS
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.runner import cached_runs, checkpoint_path, run_path
from sgdl_wrap.data.datasets import make_synthetic

# Timings and the resume record differ by design; everything else must not.
_VOLATILE = {"wall_time_s", "epoch_seconds", "epoch_seconds_mean", "resumed"}


class _Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def data():
    return make_synthetic(seed=0)


@pytest.mark.parametrize(("model", "method", "extra"), [
    ("neumf", "tce", {}),
    ("ngcf", "deca", {}),
    ("lightgcn", "sgcn", {}),
    # Phase II from epoch 1, so the weighting net, the scheduler and their optimizers are
    # in the checkpoint; NGCF's dropout draws from the global generator.
    ("ngcf", "sgdl", {"switch_epoch": 0, "history": 1}),
])
def test_interrupted_run_ends_as_an_uninterrupted_one(tmp_path, data, model, method, extra):
    config = RunConfig(dataset="synthetic", model=model, method=method, seed=1, epochs=4,
                       patience=10, extra=extra)
    reference = cached_runs(data, [config], tmp_path / "reference")[0]

    cache = tmp_path / "interrupted"
    _interrupt_after_training(data, config, cache, epoch=2)
    checkpoint = checkpoint_path(cache, config)
    assert checkpoint.exists() and not run_path(cache, config).exists()

    torch.manual_seed(12345)  # as a fresh process would be
    resumed = cached_runs(data, [config], cache)[0]
    assert [r["epoch"] for r in resumed["resumed"]] == [2]
    assert resumed["resumed"][0]["git_commit"] == reference["environment"]["git_commit"]
    assert len(resumed["epoch_seconds"]) == resumed["epochs_run"] == 4
    assert {k: v for k, v in resumed.items() if k not in _VOLATILE} == {
        k: v for k, v in reference.items() if k not in _VOLATILE
    }
    assert not checkpoint.exists()


def test_checkpoint_refers_to_the_dataset_instead_of_storing_it(tmp_path, data):
    path = tmp_path / "state.partial"
    save_checkpoint(path, {"train": data.train, "pair": (data, data.test)}, data)
    assert path.stat().st_size < 1000
    loaded = load_checkpoint(path, data)
    assert loaded["train"] is data.train and loaded["pair"] == (data, data.test)


def test_a_checkpoint_of_another_run_is_refused(tmp_path, data):
    config = RunConfig(dataset="synthetic", model="neumf", method="normal", seed=0, epochs=2)
    other = RunConfig(dataset="synthetic", model="neumf", method="normal", seed=1, epochs=2)
    cache = tmp_path / "cache"
    # A checkpoint of ``other`` left under ``config``'s name (e.g. a file copied by hand).
    _interrupt_after_training(data, other, cache, epoch=1)
    checkpoint_path(cache, other).rename(checkpoint_path(cache, config))
    with pytest.raises(ValueError, match="does not hold a run of"):
        cached_runs(data, [config], cache)


class _ForeignReferences(pickle.Pickler):
    def persistent_id(self, obj):
        return "other" if isinstance(obj, str) else None


def test_a_foreign_dataset_reference_is_refused(tmp_path, data):
    path = tmp_path / "state.partial"
    with path.open("wb") as file:
        _ForeignReferences(file).dump({"split": "valid"})
    with pytest.raises(pickle.UnpicklingError, match="unknown dataset part 'other'"):
        load_checkpoint(path, data)


def _interrupt_after_training(data, config, cache, epoch):
    """Run ``config`` through the cache and interrupt it once ``epoch`` is trained: that
    epoch's work is lost, the checkpoint of the one before it stays."""
    trainer_class = METHODS[config.method]
    train_epoch = trainer_class.train_epoch

    def interrupted(self, current):
        loss = train_epoch(self, current)
        if current == epoch:
            raise _Interrupted
        return loss

    with pytest.MonkeyPatch.context() as patch, pytest.raises(_Interrupted):
        patch.setattr(trainer_class, "train_epoch", interrupted)
        cached_runs(data, [config], cache)


class _Renamed:
    pass


def test_an_unreadable_checkpoint_names_the_file_to_delete(tmp_path, data):
    config = RunConfig(dataset="synthetic", model="neumf", method="normal", seed=0, epochs=2)
    checkpoint = checkpoint_path(tmp_path / "cache", config)
    checkpoint.parent.mkdir()
    # A class the current code no longer has, as after a rename (same length, same framing).
    checkpoint.write_bytes(pickle.dumps(_Renamed()).replace(b"_Renamed", b"_Missing"))
    with pytest.raises(RuntimeError, match="delete it to train this run from the start"):
        cached_runs(data, [config], checkpoint.parent)
