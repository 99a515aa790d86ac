"""Processes sharing a run cache never train one run twice, and a dead holder's run is taken
over."""

import dataclasses
import json
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import sgdl_wrap.benchmarks.running.runner as runner
from sgdl_wrap.benchmarks.reports.reporting import atomic_write
from sgdl_wrap.benchmarks.reproduce import _Progress, eta_text
from sgdl_wrap.benchmarks.running.run_claim import claim_path, run_claim
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.data.datasets import make_synthetic

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="claims need flock")
TINY = ["--dataset", "synthetic", "--model", "neumf", "--seeds", "0", "1", "--epochs", "2",
        "--patience", "1"]


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=60, n_items=80, seed=0)


def _config(seed=0):
    return RunConfig(dataset="synthetic", model="neumf", method="normal", seed=seed, epochs=1,
                     patience=1)


def _fail(*args, **kwargs):
    raise AssertionError("a run held by another process was trained")


@posix_only
def test_a_held_claim_is_refused_until_released(tmp_path):
    result = tmp_path / "run.json"
    with run_claim(result) as first:
        with run_claim(result) as second:
            assert first and not second
    with run_claim(result) as again:
        assert again
    assert claim_path(result).exists(), "a claim whose run has no result stays"
    result.write_text("{}")
    with run_claim(result) as last:
        assert last
    assert not claim_path(result).exists()


@posix_only
def test_the_claim_of_a_killed_process_is_granted(tmp_path):
    result = tmp_path / "run.json"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path\n"
         "from sgdl_wrap.benchmarks.running.run_claim import run_claim\n"
         f"with run_claim(Path({str(result)!r})) as held:\n"
         "    print(held, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "True"
        with run_claim(result) as claimed:
            assert not claimed
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with run_claim(result) as claimed:
        assert claimed


@posix_only
def test_a_run_another_process_trains_is_read_not_trained(tmp_path, data, monkeypatch):
    config = _config()
    path = runner.run_path(tmp_path, config)
    finished = {"test": {"recall@20": 0.5}, "wall_time_s": 1.0}
    monkeypatch.setattr(runner, "run", _fail)

    def other_process():
        with run_claim(path):
            claimed.set()
            time.sleep(0.2)
            # As the trainer writes it: the poller never sees a half-written file.
            atomic_write(path, json.dumps(finished))

    claimed = threading.Event()
    holder = threading.Thread(target=other_process)
    holder.start()
    claimed.wait()
    assert runner.try_cached_run(data, config, tmp_path) is None
    assert runner.cached_runs(data, [config], tmp_path, poll_s=0.01) == [finished]
    holder.join()


def test_runs_trained_elsewhere_are_passed_over_and_read_last(tmp_path, data, monkeypatch):
    events = []
    busy = {1: 2}  # seed 1 is trained elsewhere for the first two looks

    def fake_try(data, config, cache_dir):
        if busy.get(config.seed):
            busy[config.seed] -= 1
            return None
        return runner.CachedRun({"test": {"seed": config.seed}}, trained=config.seed != 1)

    class Recorder(runner.RunProgress):
        def starting(self, config):
            events.append(("start", config.seed))

        def finished(self, config, outcome):
            events.append(("done", config.seed, outcome.trained))

        def waiting(self, runs):
            events.append(("wait", runs))

    monkeypatch.setattr(runner, "try_cached_run", fake_try)
    configs = [_config(seed) for seed in (0, 1, 2)]
    results = runner.cached_runs(data, configs, tmp_path, poll_s=0.0, progress=Recorder())
    assert [r["test"]["seed"] for r in results] == [0, 1, 2]
    assert events == [
        ("start", 0), ("done", 0, True), ("start", 1), ("start", 2), ("done", 2, True),
        ("wait", 1), ("start", 1), ("wait", 1), ("start", 1), ("done", 1, False),
    ]


@posix_only
def test_two_processes_on_one_cache_divide_the_runs(tmp_path):
    def start(tag):
        return subprocess.Popen(
            [sys.executable, "-m", "benchmarks", "--verbose", "reproduce", "table3", *TINY,
             "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / tag),
             "--tag", tag],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )

    processes = [start("a"), start("b")]
    logs = [p.communicate(timeout=600)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], logs
    trained = [name for log in logs for name in re.findall(r"training: (\S+)", log)]
    # Three SGDL variants x two seeds, each trained by exactly one of the processes.
    assert len(trained) == len(set(trained)) == 6
    tables = [(tmp_path / t / f"table3_synthetic_{t}.json").read_text() for t in ("a", "b")]
    assert json.loads(tables[0])["rows"] == json.loads(tables[1])["rows"]


def test_the_time_estimate_weighs_each_kind_of_run_by_its_own_training_time():
    assert eta_text(600.0, {"normal": [600.0, 600.0]}, ["sgdl", "sgdl"]) == (
        "(2 to train, ETA 10 min)")  # no SGDL run yet: the mean of all; two processes
    assert eta_text(3600.0, {"normal": [600.0, 600.0], "sgdl": [3000.0]}, ["sgdl"]) == (
        "(1 to train, ETA 43 min)")
    assert eta_text(600.0, {}, ["normal"]) == "(1 to train, ETA after the first)"
    assert eta_text(600.0, {"normal": [600.0]}, []) == "(nothing left to train)"


def test_the_time_estimate_counts_runs_other_processes_finished(tmp_path, monkeypatch):
    configs = [_config(seed) for seed in range(2)] + [
        dataclasses.replace(_config(seed), method="sgdl") for seed in range(2)]
    clock = iter([0.0, 600.0, 3600.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    progress = _Progress("table", configs, tmp_path)
    for config in configs[:2]:  # finished by two other processes
        atomic_write(runner.run_path(tmp_path, config), json.dumps({"wall_time_s": 600.0}))
    progress.starting(configs[2])
    assert progress.bar.postfix.endswith("sgdl/s0 (2 to train, ETA 10 min)")
    atomic_write(runner.run_path(tmp_path, configs[2]), json.dumps({"wall_time_s": 3000.0}))
    progress.waiting(1)
    assert progress.bar.postfix.endswith("training (1 to train, ETA 43 min)")
    progress.close()


def test_the_time_estimate_takes_this_process_s_runs_from_their_results(tmp_path, monkeypatch):
    configs = [_config(0), dataclasses.replace(_config(0), method="sgdl"),
               dataclasses.replace(_config(1), method="sgdl")]
    clock = iter([0.0, 3600.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    progress = _Progress("table", configs, tmp_path)
    progress.finished(configs[0], runner.CachedRun({"wall_time_s": 600.0}, trained=True))
    progress.finished(configs[1], runner.CachedRun({"wall_time_s": 3000.0}, trained=True))
    progress.starting(configs[2])  # no result file was written: nothing is read
    assert progress.bar.postfix.endswith("sgdl/s1 (1 to train, ETA 50 min)")
    progress.close()
