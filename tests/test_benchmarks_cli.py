import copy
import dataclasses
import json
import re

import pytest
import torch

from sgdl_wrap.benchmarks.cli import main
from sgdl_wrap.benchmarks.reports.significance import paired_improvement_p
from sgdl_wrap.benchmarks.running.data import load
from sgdl_wrap.benchmarks.running.methods import METHODS
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.runner import effective_extra, run_path
from sgdl_wrap.benchmarks.running.trainers import SGDLTrainer, Trainer
from sgdl_wrap.losses import per_sample_losses


@pytest.mark.parametrize("model", ["neumf", "lightgcn"])
def test_run_writes_json_and_markdown(tmp_path, model):
    main(["run", "--dataset", "synthetic", "--model", model, "--seeds", "0", "1",
          "--epochs", "2", "--patience", "1", "--results-dir", str(tmp_path), "--no-cache"])
    record = json.loads((tmp_path / f"run_synthetic_{model}_normal.json").read_text())
    assert record["seeds"] == [0, 1]
    assert record["command"].startswith("python")
    for key in ("git_commit", "torch", "cpu", "torch_threads"):
        assert key in record["environment"]
    assert set(record["summary"]["recall@20"]) == {"mean", "std"}
    assert len(record["runs"]) == 2 and record["runs"][0]["epochs_run"] <= 2
    assert all(0.0 <= run["test"]["ndcg@5"] <= 1.0 for run in record["runs"])
    table = (tmp_path / f"run_synthetic_{model}_normal.md").read_text()
    assert "| this run (2 seeds) |" in table
    assert "Training time of the runs, cached ones included:" in table


def test_seeded_runs_repeat_exactly(tmp_path):
    for folder in ("a", "b"):
        main(["run", "--dataset", "synthetic", "--model", "neumf", "--seeds", "3",
              "--epochs", "2", "--results-dir", str(tmp_path / folder), "--no-cache"])
    first, second = (json.loads((tmp_path / f / "run_synthetic_neumf_normal.json").read_text())
                     for f in ("a", "b"))
    assert first["runs"][0]["test"] == second["runs"][0]["test"]
    assert first["runs"][0]["history"] == second["runs"][0]["history"]


def test_finished_runs_are_cached_by_configuration(tmp_path):
    def sweep(seeds):
        main(["run", "--dataset", "synthetic", "--model", "neumf", "--seeds", *seeds,
              "--epochs", "1", "--results-dir", str(tmp_path), "--cache-dir",
              str(tmp_path / "cache")])
        return json.loads((tmp_path / "run_synthetic_neumf_normal.json").read_text())["runs"]

    first = sweep(["0"])
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    second = sweep(["0", "1"])
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2
    assert second[0] == first[0]  # the cached run, wall time included


def test_a_setting_that_restates_the_default_keys_the_same_cached_run(tmp_path):
    def path(method, run_seed=0, **extra):
        config = RunConfig(dataset="synthetic", model="neumf", method=method, seed=run_seed,
                           extra=extra)
        return run_path(tmp_path, config)

    assert effective_extra(RunConfig("synthetic", "neumf", "sgdl", 0,
                                     extra={"meta_lr": 5e-4, "tau": 2.0})) == {"tau": 2.0}
    assert path("sgdl", meta_lr=5e-4) == path("sgdl")
    assert path("sgdl", meta_lr=5e-4, reset_model_optimizer=False) == path("sgdl")
    assert path("sgdl", meta_lr=5e-6) != path("sgdl")
    assert path("normal", track_memorization=False) == path("normal")
    assert path("tce", max_rate=0.2) == path("tce") != path("tce", max_rate=0.1)
    # The run's seed seeds the wrapper unless a setting overrides it.
    assert path("sgdl", run_seed=3, seed=0) != path("sgdl", run_seed=3)
    assert path("sgdl", run_seed=3, seed=3) == path("sgdl", run_seed=3)
    with pytest.raises(KeyError, match="unknown SGDL config key 'meta_rate'"):
        path("sgdl", meta_rate=1e-3)


def test_a_setting_that_another_one_needs_stays_in_the_cache_key(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class RangeSettings:
        low: float = 0.0
        high: float = 1.0

        def __post_init__(self):
            if self.low >= self.high:
                raise ValueError(f"low {self.low} must lie below high {self.high}")

    class RangeTrainer(Trainer):
        name = "range"
        Settings = RangeSettings

    monkeypatch.setitem(METHODS, "range", RangeTrainer)
    extra = {"low": 2.0, "high": 3.0}
    assert effective_extra(RunConfig("synthetic", "neumf", "range", 0, extra=extra)) == extra


def test_timing_command(tmp_path):
    main(["timing", "--dataset", "synthetic", "--model", "cdae", "--epochs", "2",
          "--results-dir", str(tmp_path)])
    record = json.loads((tmp_path / "timing_synthetic_normal.json").read_text())
    assert record["models"]["cdae"]["batches"] > 0


def test_unknown_model_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--dataset", "synthetic", "--model", "mf"])
    assert "invalid choice: 'mf'" in capsys.readouterr().err


def test_sgdl_method_records_its_phases(tmp_path):
    main(["run", "--dataset", "synthetic", "--model", "neumf", "--method", "sgdl",
          "--set", "switch_epoch=0", "--set", "history=1", "--epochs", "2", "--patience", "1",
          "--tag", "smoke", "--results-dir", str(tmp_path), "--no-cache"])
    run = json.loads((tmp_path / "run_synthetic_neumf_sgdl_smoke.json").read_text())["runs"][0]
    assert run["switch_epoch"] == 0
    assert run["sgdl_config"]["history"] == 1
    assert [e["phase"] for e in run["epochs"]] == ["memorization", "self_guided"]
    assert run["epochs"][1]["weight_clean"] is not None


def test_an_sgdl_run_shows_the_normal_run_of_its_own_tag(tmp_path):
    def run(method, *tag):
        main(["run", "--dataset", "synthetic", "--model", "neumf", "--method", method,
              "--epochs", "1", "--results-dir", str(tmp_path), "--no-cache", *tag])

    run("normal")
    run("normal", "--seeds", "0", "1", "--tag", "long")
    run("sgdl", "--seeds", "0", "1", "--tag", "long")
    run("sgdl", "--tag", "other")
    long = (tmp_path / "run_synthetic_neumf_sgdl_long.md").read_text()
    assert "| this repo, normal_long (2 seeds) |" in long
    assert "| p, this run > normal_long (paired, seeds 0 1) |" in long
    other = (tmp_path / "run_synthetic_neumf_sgdl_other.md").read_text()
    assert "| this repo, normal (1 seed) |" in other
    assert "| p, this run" not in other  # one shared seed: no test


def test_an_sgdl_run_is_not_tested_against_normal_runs_of_another_protocol(tmp_path):
    def run(method, *argv):
        main(["run", "--dataset", "synthetic", "--model", "neumf", "--method", method,
              "--seeds", "0", "1", "--results-dir", str(tmp_path), "--no-cache", *argv])
        return json.loads((tmp_path / f"run_synthetic_neumf_{method}.json").read_text())

    run("normal", "--epochs", "1")
    sgdl = run("sgdl", "--epochs", "2", "--patience", "1")
    assert sgdl["paired_tests"] == []
    table = (tmp_path / "run_synthetic_neumf_sgdl.md").read_text()
    assert ("| this repo, normal (2 seeds; another protocol: epochs 1 vs 2, patience 10 vs 1) |"
            in table)
    assert "| p, this run" not in table


def test_an_sgdl_run_tests_its_improvement_over_normal_seed_by_seed(tmp_path):
    def run(method, *seeds):
        main(["run", "--dataset", "synthetic", "--model", "neumf", "--method", method,
              "--epochs", "1", "--results-dir", str(tmp_path), "--no-cache", "--seeds", *seeds])
        return json.loads((tmp_path / f"run_synthetic_neumf_{method}.json").read_text())

    normal = run("normal", "0", "1", "2")
    sgdl = run("sgdl", "2", "1", "5")
    [over] = sgdl["paired_tests"]
    assert over["against"] == "normal" and over["seeds"] == [1, 2]
    def recall(runs):
        return {r["config"]["seed"]: r["test"]["recall@20"] for r in runs}

    mine, theirs = recall(sgdl["runs"]), recall(normal["runs"])
    expected = paired_improvement_p([mine[1], mine[2]], [theirs[1], theirs[2]])
    assert over["p"]["recall@20"] == pytest.approx(expected, nan_ok=True)


def test_a_run_is_compared_with_the_results_it_names(tmp_path):
    def run(method, *argv):
        main(["run", "--dataset", "synthetic", "--model", "neumf", "--method", method,
              "--epochs", "1", "--seeds", "0", "1", "--results-dir", str(tmp_path),
              "--no-cache", *argv])

    run("normal", "--tag", "long")
    run("sgdl", "--tag", "long")
    run("normal", "--tag", "short", "--epochs", "2")
    run("sgdl", "--set", "scheduler=top_f", "--tag", "top-f",
        "--compare", "normal_long", "sgdl_long", "normal_short")
    result = json.loads((tmp_path / "run_synthetic_neumf_sgdl_top-f.json").read_text())
    assert [t["against"] for t in result["paired_tests"]] == ["normal_long", "sgdl_long"]
    table = (tmp_path / "run_synthetic_neumf_sgdl_top-f.md").read_text()
    assert "| p, this run > sgdl_long (paired, seeds 0 1) |" in table
    assert "| this repo, normal_short (2 seeds; another protocol: epochs 2 vs 1) |" in table
    # Any method can be compared, a result elsewhere by its file, and a name that is not
    # there fails before training.
    scratch = tmp_path / "scratch"
    run("normal", "--tag", "again", "--results-dir", str(scratch),
        "--compare", str(tmp_path / "run_synthetic_neumf_normal_long.json"))
    again = json.loads((scratch / "run_synthetic_neumf_normal_again.json").read_text())
    assert again["paired_tests"][0]["against"] == "normal_long"
    with pytest.raises(FileNotFoundError, match="run_synthetic_neumf_sgdl_lng.json"):
        run("sgdl", "--tag", "typo", "--compare", "sgdl_lng")
    assert not (tmp_path / "run_synthetic_neumf_sgdl_typo.json").exists()


def test_sgdl_early_stopping_waits_for_phase_two(tmp_path):
    # Phase I alone would exhaust a patience of 1; the switch grants a fresh one.
    main(["run", "--dataset", "synthetic", "--model", "neumf", "--method", "sgdl",
          "--set", "switch_epoch=2", "--set", "history=6", "--set", "phase1_lr_factor=1e-6",
          "--epochs", "5", "--patience", "1", "--results-dir", str(tmp_path), "--no-cache"])
    run = json.loads((tmp_path / "run_synthetic_neumf_sgdl.json").read_text())["runs"][0]
    assert run["switch_epoch"] == 2
    assert run["epochs_run"] >= 4


@pytest.mark.parametrize("reset", [False, True])
def test_sgdl_can_recreate_the_model_optimizer_each_phase_two_epoch(reset):
    config = RunConfig(dataset="synthetic", model="neumf", method="sgdl", seed=0,
                       extra={"switch_epoch": 0, "history": 1, "reset_model_optimizer": reset})
    trainer = SGDLTrainer(load("synthetic", None), config)
    batches = -(-len(trainer.data.train) // config.resolved_batch_size())
    first = trainer.optimizer
    for epoch in range(3):
        trainer.train_epoch(epoch)
    steps = {int(state["step"]) for state in trainer.optimizer.state.values()}
    assert (trainer.optimizer is not first) == reset
    assert steps == {batches if reset else 3 * batches}


def test_reset_model_optimizer_must_be_a_bool():
    config = RunConfig(dataset="synthetic", model="neumf", method="sgdl", seed=0,
                       extra={"reset_model_optimizer": "yes"})
    with pytest.raises(ValueError, match="reset_model_optimizer must be true or false, got 'yes'"):
        SGDLTrainer(load("synthetic", None), config)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "history=2"], "unknown normal setting 'history'"),
        (["--method", "tce", "--set", "max_rat=0.1"], "did you mean ['max_rate']"),
        (["--method", "sgdl", "--set", "histroy=2"], "did you mean ['history']"),
    ],
)
def test_bad_method_settings_are_rejected(tmp_path, argv, message):
    with pytest.raises((SystemExit, KeyError), match=re.escape(message)):
        main(["run", "--dataset", "synthetic", "--model", "neumf", "--epochs", "1",
              "--results-dir", str(tmp_path), "--no-cache", *argv])


def test_speed_benchmark_records_both_methods(tmp_path):
    from sgdl_wrap.benchmarks.studies import speed

    path = speed.main(["--dataset", "synthetic", "--model", "lightgcn", "--max-batches", "5",
                       "--rounds", "2", "--warmup", "1", "--loop-batches", "1",
                       "--results-dir", str(tmp_path)])
    record = json.loads(path.read_text())["models"]["lightgcn"]
    assert record["per_sample_gradients"] == "factors"
    assert record["normal"]["batches_timed"] == record["sgdl_phase2"]["batches_timed"] == 5
    rounds = record["phase2_over_normal_per_round"]
    assert len(rounds) == 2
    assert record["phase2_over_normal_round_median"] == pytest.approx(sum(rounds) / 2)
    assert "median per round (range)" in path.with_suffix(".md").read_text()
    assert record["phase2_over_normal"] > 0 and record["sgdl_phase2_loop"]["batches_timed"] == 1


def test_custom_models_benchmark_times_every_strategy(tmp_path):
    from sgdl_wrap.benchmarks.studies import custom_models

    path = custom_models.main(["--dataset", "synthetic", "--batches", "40", "--loop-batches",
                               "1", "--warmup", "1", "--results-dir", str(tmp_path)])
    models = json.loads(path.read_text())["models"]
    assert {name: sorted(r) for name, r in models.items()} == {
        "mf": ["factors", "loop", "modules"], "tower-mlp": ["loop", "modules"]}
    assert models["mf"]["modules"]["batches_timed"] == 40
    assert models["tower-mlp"]["loop"]["batches_timed"] == 1
    assert all(r["phase2_ms_per_batch_median"] > 0 for m in models.values() for r in m.values())
    assert "per-sample gradients" in path.with_suffix(".md").read_text()


def test_speed_benchmark_times_past_the_end_of_an_epoch(tmp_path):
    from sgdl_wrap.benchmarks.studies import speed

    path = speed.main(["--dataset", "synthetic", "--model", "neumf", "--max-batches", "40",
                       "--warmup", "1", "--results-dir", str(tmp_path)])
    record = json.loads(path.read_text())["models"]["neumf"]
    assert record["batches_per_epoch"] < 40
    assert record["normal"]["batches_timed"] == record["sgdl_phase2"]["batches_timed"] == 40


@pytest.mark.parametrize(("total", "rounds", "blocks"), [
    (200, 4, [50, 50, 50, 50]), (5, 2, [3, 2]), (2, 4, [1, 1]), (7, 1, [7]),
])
def test_speed_blocks_split_the_batches(total, rounds, blocks):
    from sgdl_wrap.benchmarks.studies.speed import _blocks

    assert _blocks(total, rounds) == blocks


def test_synthetic_denoising_benchmark(tmp_path):
    from sgdl_wrap.benchmarks.studies import synthetic_denoising

    path = synthetic_denoising.main(["--model", "neumf", "--seeds", "0", "--epochs", "3",
                                     "--users", "40", "--items", "60", "--per-user", "10",
                                     "--history", "2", "--results-dir", str(tmp_path)])
    run = json.loads(path.read_text())["models"]["neumf"][0]
    assert run["switch_epoch"] is not None and 0 < run["clean_rate"] < 1
    assert run["last"]["weight_clean"] is not None


def test_phase2_dynamics_benchmark(tmp_path):
    from sgdl_wrap.benchmarks.studies import phase2_dynamics

    path = phase2_dynamics.main(["--dataset", "synthetic", "--model", "lightgcn", "--epochs",
                                 "3", "--switch-epoch", "0", "--results-dir", str(tmp_path)])
    traces = json.loads(path.read_text())["models"]["lightgcn"]
    assert [len(traces["normal"]), len(traces["sgdl"])] == [3, 3]
    assert [row["phase"] for row in traces["sgdl"]] == ["memorization"] + ["self_guided"] * 2
    # Epoch 0 trains identically in both runs (Phase I at the full rate, same seed).
    assert traces["sgdl"][0]["unweighted_loss"] == pytest.approx(
        traces["normal"][0]["unweighted_loss"])
    assert traces["sgdl"][2]["weight_clean"] is not None


def test_phase2_dynamics_passes_settings_to_sgdl(tmp_path):
    from sgdl_wrap.benchmarks.studies import phase2_dynamics

    path = phase2_dynamics.main(["--dataset", "synthetic", "--model", "neumf", "--epochs", "2",
                                 "--switch-epoch", "0", "--set", "weight_candidates=true",
                                 "--tag", "cand", "--results-dir", str(tmp_path)])
    assert path.name == "phase2_dynamics_synthetic_cand.json"
    assert json.loads(path.read_text())["sgdl_settings"] == {"weight_candidates": True}
    with pytest.raises(KeyError, match="unknown SGDL config key"):
        phase2_dynamics.main(["--dataset", "synthetic", "--model", "neumf", "--epochs", "1",
                              "--set", "no_such_key=1", "--results-dir", str(tmp_path)])


def test_per_sample_agreement_benchmark(tmp_path):
    from sgdl_wrap.benchmarks.studies import per_sample_agreement

    path = per_sample_agreement.main(["--dataset", "synthetic", "--model", "cdae", "--batches",
                                      "1", "--batch-size", "8", "--warmup-epochs", "0",
                                      "--lookahead-lr", "1.0", "--results-dir", str(tmp_path)])
    factors = json.loads(path.read_text())["models"]["cdae lr=1"]["factors"]
    assert all(f["exact"] and f["max_abs_difference"] < 1e-4 for f in factors.values())


def test_tune_picks_the_best_validation_value(tmp_path):
    from sgdl_wrap.benchmarks.tune import choose

    folders = ["--results-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache")]
    main(["tune", "--dataset", "synthetic", "--model", "neumf", "--method", "tce",
          "--setting", "max_rate", "--values", "0.05", "0.3", "--seeds", "0", "1",
          "--epochs", "2", "--patience", "1", *folders])
    record = json.loads((tmp_path / "tune_synthetic_neumf_tce_max_rate.json").read_text())
    grid = record["grid"]
    assert [g["value"] for g in grid] == [0.05, 0.3]
    assert all(len(g["valid"]) == 2 for g in grid)
    assert record["chosen"] == choose([0.05, 0.3], [g["valid"] for g in grid])
    assert "(chosen)" in (tmp_path / "tune_synthetic_neumf_tce_max_rate.md").read_text()


def test_tune_choice_and_its_errors():
    from sgdl_wrap.benchmarks.tune import choose

    assert choose([1, 2, 3], [[0.1, 0.3], [0.3, 0.2], [0.2, 0.2]]) == 2
    assert choose(["a", "b"], [[0.5], [0.5]]) == "a"
    from sgdl_wrap.benchmarks.tune import _value

    assert [_value(v) for v in ("3", "0.5", "true", "lstm")] == [3, 0.5, True, "lstm"]
    with pytest.raises(ValueError, match="one list of scores per value"):
        choose([1, 2], [[0.1]])


def test_tune_rejects_a_setting_the_method_does_not_know(tmp_path):
    with pytest.raises(KeyError, match="unknown tce setting 'no_such_key'"):
        main(["tune", "--dataset", "synthetic", "--model", "neumf", "--method", "tce",
              "--setting", "no_such_key", "--values", "1", "--epochs", "1",
              "--results-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache")])


@pytest.mark.parametrize(("method", "weighting"),
                         [("normal-matched", "uniform"), ("sgdl-frozen", "frozen")])
def test_a_matched_control_differs_from_sgdl_in_its_weighting_alone(method, weighting):
    extra = {"switch_epoch": 0, "history": 1, "meta_lr": 5e-6, "reset_model_optimizer": True}
    sgdl_settings, sgdl_reset = SGDLTrainer.settings_for(extra, 3)
    settings, reset = METHODS[method].settings_for(extra, 3)
    differs = {k for k, v in settings.to_dict().items() if sgdl_settings.to_dict()[k] != v}
    assert differs == {"weighting"} and settings.weighting == weighting
    assert reset == sgdl_reset
    with pytest.raises(ValueError, match=f"{method} fixes weighting='{weighting}'; got 'learned'"):
        METHODS[method].settings_for({"weighting": "learned"}, 0)

    # One training step each, from the same state after Phase I.
    data = load("synthetic", None)
    trainers = {
        name: METHODS[name](data, RunConfig(dataset="synthetic", model="neumf", method=name,
                                            seed=0, extra={"switch_epoch": 0, "history": 1}))
        for name in ("sgdl", method)
    }
    for trainer in trainers.values():
        trainer.train_epoch(0)
    before = {n: p.detach().clone() for n, p in trainers["sgdl"].model.named_parameters()}
    for name, p in trainers[method].model.named_parameters():
        assert torch.equal(p, before[name]), name
    batch = next(trainers[method].sgdl.batches(64))
    reference = copy.deepcopy(trainers[method])
    trainers[method].sgdl.step(batch, trainers[method].optimizer)
    # The same step by hand: Adam on the mean loss, weighted by the initial net when frozen.
    losses = per_sample_losses(reference.model, reference.loss, batch)
    weights = (torch.ones_like(losses) if weighting == "uniform"
               else reference.sgdl.weight_net(losses).detach())
    reference.optimizer.zero_grad()
    (weights * losses).mean().backward()
    reference.optimizer.step()
    for (name, p), q in zip(trainers[method].model.named_parameters(),
                            reference.model.parameters()):
        torch.testing.assert_close(p, q, msg=name)
        assert not torch.equal(p, before[name]), name


def test_the_as_published_protocol_differs_from_sgdl_as_documented(tmp_path):
    # history 4: nothing is memorized before epoch 2, so the switch waits for epoch 1.
    extra = {"switch_epoch": 1, "history": 4}
    sgdl_settings, _ = SGDLTrainer.settings_for(extra, 0)
    published = METHODS["sgdl-as-published"]
    settings, reset = published.settings_for(extra, 0)
    differs = {k for k, v in settings.to_dict().items() if sgdl_settings.to_dict()[k] != v}
    assert differs == {"weighting"} and settings.weighting == "frozen" and reset
    assert published.protocol == {"patience": 8, "eval_every": 5}
    with pytest.raises(ValueError, match="sgdl-as-published runs with patience=8, got 10"):
        published(load("synthetic", None), RunConfig(dataset="synthetic", model="lightgcn",
                                                     method="sgdl-as-published", seed=0))
    with pytest.raises(SystemExit, match="--patience 3: sgdl-as-published runs with 8"):
        main(["run", "--dataset", "synthetic", "--model", "neumf", "--method",
              "sgdl-as-published", "--patience", "3", "--results-dir", str(tmp_path)])

    config = RunConfig(dataset="synthetic", model="lightgcn", method="sgdl-as-published",
                       seed=0, patience=8, eval_every=5, extra=extra)
    trainer = published(load("synthetic", None), config)
    initial = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    # LightGCN's tables start N(0, 0.1), as in the first release.
    assert 0.09 < float(initial["user_embedding"].std()) < 0.11
    trainer.train_epoch(0)
    assert not trainer.sgdl.reports[-1].switched and not trainer.validates
    assert not torch.equal(trainer.model.user_embedding, initial["user_embedding"])
    trainer.train_epoch(1)  # the switch: Phase II restarts from the initial parameters
    assert trainer.sgdl.reports[-1].switched and trainer.validates
    for name, p in trainer.model.named_parameters():
        assert torch.equal(p, initial[name]), name


def test_an_as_published_run_validates_only_in_phase_two(tmp_path):
    main(["run", "--dataset", "synthetic", "--model", "neumf", "--method", "sgdl-as-published",
          "--set", "switch_epoch=5", "--set", "history=12", "--epochs", "12",
          "--results-dir", str(tmp_path), "--no-cache"])
    record = json.loads((tmp_path / "run_synthetic_neumf_sgdl-as-published.json").read_text())
    run = record["runs"][0]
    assert run["config"]["patience"] == 8 and run["config"]["eval_every"] == 5
    assert run["switch_epoch"] == 5
    assert [h["epoch"] for h in run["history"]] == [9]
