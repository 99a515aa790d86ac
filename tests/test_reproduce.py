"""The reproduction commands on a tiny configuration: files, rows and columns."""

import json

import pytest

from sgdl_wrap.benchmarks.cli import main
from sgdl_wrap.benchmarks.reports import figures
from sgdl_wrap.benchmarks.reports.significance import paired_improvement_p, paired_run_p
from sgdl_wrap.benchmarks.reproduce import table2_methods
from sgdl_wrap.benchmarks.running.run_config import RunConfig
from sgdl_wrap.benchmarks.running.runner import run
from sgdl_wrap.data.datasets import make_synthetic

TINY = ["--dataset", "synthetic", "--model", "neumf", "--seeds", "0", "1", "--epochs", "2",
        "--patience", "1"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    folders = ["--results-dir", str(root / "results"), "--cache-dir", str(root / "cache")]
    main(["reproduce", "all", *TINY, *folders])
    return root


def _table_rows(path):
    lines = [line for line in path.read_text().splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@pytest.mark.parametrize(("name", "labels", "columns"), [
    ("table2", table2_methods("neumf"), 2 + 4 * 3),
    ("table3", ["SGDL", "w/o-DLS", "w/o-ADS"], 2 + 4 * 3),
    ("table4", ["+10%", "+5%", "0", "-5%", "-10%"], 2 + 3),
    ("table5", ["top_f", "mlp", "lstm"], 2 + 2 * 3),
])
def test_tables_hold_every_row_and_column(outputs, name, labels, columns):
    header, *rows = _table_rows(outputs / "results" / f"{name}_synthetic.md")
    assert len(header) == columns
    assert [row[1] for row in rows] == labels
    assert all(len(row) == columns for row in rows)
    record = json.loads((outputs / "results" / f"{name}_synthetic.json").read_text())
    assert record["command"] and record["environment"]["torch"]
    assert [r["method"] for r in record["rows"]] == labels
    assert all(r["seeds"] == [0, 1] and len(r["per_seed"]["recall@20"]) == 2
               for r in record["rows"])
    assert record["compute_s"] > 0


def test_runs_are_shared_between_artefacts(outputs):
    # Table 2 (7 methods), Table 3 (+2 variants), Table 4 (+4 shifts), Table 5 (+2 schedulers),
    # and Figure 1's tracked Normal run: 15 configurations x 2 seeds + 1.
    assert len(list((outputs / "cache").glob("*.json"))) == 15 * 2 + 1


@pytest.mark.parametrize("number", [1, 3, 4, 5])
def test_figures_are_written(outputs, number):
    png = outputs / "results" / f"figure{number}_synthetic.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"figure{number}_synthetic.png" in (png.with_suffix(".md")).read_text()


def test_figures_show_every_requested_model(tmp_path):
    main(["reproduce", "figure3", "--dataset", "synthetic", "--model", "cdae", "ngcf",
          "--seeds", "0", "--epochs", "2", "--patience", "1",
          "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")])
    record = json.loads((tmp_path / "results" / "figure3_synthetic.json").read_text())
    assert record["models"] == ["cdae", "ngcf"]


def test_a_repeated_command_trains_nothing(outputs, monkeypatch):
    import sgdl_wrap.benchmarks.running.runner as runner

    def fail(*args, **kwargs):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(runner, "run", fail)
    main(["reproduce", "table3", *TINY, "--results-dir", str(outputs / "again"),
          "--cache-dir", str(outputs / "cache"), "--tag", "again"])
    tagged = outputs / "again" / "table3_synthetic_again.md"
    assert tagged.read_text().startswith("# Table3 on synthetic (again)\n")


def test_figures_draw_phase_two_data(tmp_path):
    data = make_synthetic(n_users=80, n_items=100, seed=1)
    config = RunConfig(dataset="synthetic", model="neumf", method="sgdl", seed=0, epochs=4,
                       patience=10, extra={"switch_epoch": 1, "history": 2})
    sgdl = run(data, config)
    assert sgdl["figure_data"]["loss_histogram"]["epoch"] == sgdl["switch_epoch"] <= 1
    weights = sgdl["figure_data"]["weights"]
    assert len(weights["loss"]) == len(weights["weight"]) == len(weights["noisy"]) > 0
    normal = run(data, RunConfig(dataset="synthetic", model="neumf", method="normal", seed=0,
                                 epochs=4, extra={"track_memorization": True}))
    assert len(normal["epochs"]) == 4
    assert normal["epochs"][-1]["memory_rate_clean"] is not None
    for number, draw in ((1, figures.figure1), (3, figures.figure3), (4, figures.figure4),
                         (5, figures.figure5)):
        path = tmp_path / f"f{number}.png"
        draw({"neumf": sgdl}, {"neumf": normal}, path)
        assert path.stat().st_size > 10_000


def test_paired_improvement_against_a_hand_computed_example():
    # Differences 1, 2, 3: mean 2, sd 1, t = 2 * sqrt(3) with 2 degrees of freedom, whose
    # one-sided tail is 1/2 - t / (2 sqrt(2 + t^2)) = 1/2 - sqrt(12) / (2 sqrt(14)).
    expected = 0.5 - 12**0.5 / (2 * 14**0.5)
    assert paired_improvement_p([1.5, 3.0, 3.25], [0.5, 1.0, 0.25]) == pytest.approx(expected)
    assert expected == pytest.approx(0.03709, abs=1e-5)
    assert paired_improvement_p([0.5, 1.0, 0.25], [1.5, 3.0, 3.25]) == pytest.approx(1 - expected)


def test_runs_are_paired_by_seed():
    def runs(values):
        return [{"config": {"seed": seed}, "test": {"recall@20": value}}
                for seed, value in values.items()]

    # The hand-computed example above, in another order and with unshared seeds 7 and 9.
    treatment = runs({4: 3.25, 9: 0.0, 1: 1.5, 2: 3.0})
    baseline = runs({2: 1.0, 1: 0.5, 7: 9.0, 4: 0.25})
    seeds, p = paired_run_p(treatment, baseline, "recall@20")
    assert seeds == [1, 2, 4]
    assert p == pytest.approx(0.5 - 12**0.5 / (2 * 14**0.5))


def test_paired_improvement_edge_cases():
    assert paired_improvement_p([2.0, 3.0], [1.0, 2.0]) == 0.0  # constant positive gain
    assert paired_improvement_p([1.0, 2.0], [1.0, 2.0]) == 1.0
    assert paired_improvement_p([1.0], [0.0]) != paired_improvement_p([1.0], [0.0])  # NaN
    with pytest.raises(ValueError, match="equal-length"):
        paired_improvement_p([1.0, 2.0], [1.0])


def test_every_table2_method_finds_its_paper_row():
    from sgdl_wrap.benchmarks.reports.paper import paper_row

    for model in ("neumf", "cdae", "ngcf", "lightgcn"):
        missing = [m for m in table2_methods(model) if paper_row("ml100k", model, m) is None]
        assert missing == (["rce"] if model in ("neumf", "cdae") else [])


def test_tuned_table2_settings_are_valid_settings_of_their_method():
    from sgdl_wrap.benchmarks.reproduce import TABLE2_SETTINGS
    from sgdl_wrap.benchmarks.running.methods import METHODS
    from sgdl_wrap.config import settings_from_dict

    for (_, method), (settings, source) in TABLE2_SETTINGS.items():
        settings_from_dict(METHODS[method].Settings, settings, method)  # raises if unknown
        assert source


def test_sgdl_settings_reach_every_sgdl_run_and_only_those(tmp_path):
    folders = ["--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]
    main(["reproduce", "table2", *TINY, "--method", "normal", "--sgdl-set", "meta_lr=5e-6",
          "--sgdl-set", "weight_hidden=8", *folders])
    extras = {}
    for path in (tmp_path / "cache").glob("*.json"):
        config = json.loads(path.read_text())["config"]
        extras.setdefault(config["method"], []).append(config["extra"])
    assert extras == {"normal": [{}, {}],
                      "sgdl": [{"meta_lr": 5e-6, "weight_hidden": 8}] * 2}
    record = json.loads((tmp_path / "results" / "table2_synthetic.json").read_text())
    assert record["sgdl_settings"] == {"meta_lr": 5e-6, "weight_hidden": 8}
    assert "SGDL runs use {'meta_lr': 5e-06, 'weight_hidden': 8}." in (
        tmp_path / "results" / "table2_synthetic.md").read_text()


@pytest.mark.parametrize(("artefact", "setting", "error"), [
    ("table2", "meta_lrr=5e-6", "unknown SGDL config key 'meta_lrr'"),
    ("table2", "meta_lr=-1", "meta_lr"),
    ("table5", "scheduler=mlp", "conflicts with table5"),
    ("all", "denoising=false", "conflicts with table3"),
])
def test_bad_sgdl_settings_fail_before_training(tmp_path, artefact, setting, error):
    with pytest.raises((KeyError, ValueError), match=error):
        main(["reproduce", artefact, *TINY, "--sgdl-set", setting,
              "--results-dir", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")])
    assert not (tmp_path / "cache").exists()
