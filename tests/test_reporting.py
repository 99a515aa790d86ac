import json

import numpy as np
import pytest

from sgdl_wrap.benchmarks.reports import reporting


@pytest.mark.parametrize(("threads", "spelt"), [(1, "1 thread,"), (2, "2 threads,")])
def test_result_footer_names_the_environment(tmp_path, monkeypatch, threads, spelt):
    environment = {"git_commit": "abc123", "torch": "2.13.0+cpu", "cpu": "Test CPU",
                   "gpu": None, "torch_threads": threads}
    monkeypatch.setattr(reporting, "environment", lambda device="cpu": environment)
    path = reporting.write_result("demo", {"rows": [1]}, "| a |\n", seeds=[0, 1],
                                  wall_time_s=1.5, results_dir=tmp_path)
    record = json.loads(path.read_text())
    assert record["environment"] == environment and record["rows"] == [1]
    footer = (tmp_path / "demo.md").read_text().splitlines()[-1]
    assert f"commit abc123, torch 2.13.0+cpu, Test CPU, {spelt} seeds [0, 1]" in footer
    assert footer.endswith("wall time 1.5 s")


def _run_result(path, values):
    runs = [{"config": {"seed": seed}, "test": {"recall@20": r, "ndcg@20": n}}
            for seed, (r, n) in enumerate(values)]
    summary = {m: {"mean": float(np.mean([run["test"][m] for run in runs])),
                   "std": float(np.std([run["test"][m] for run in runs], ddof=1))}
               for m in ("recall@20", "ndcg@20")}
    path.write_text(json.dumps({"runs": runs, "summary": summary}))


def test_the_verdict_pairs_each_control_with_sgdl_by_seed(tmp_path):
    from scipy import stats

    from sgdl_wrap.benchmarks.cli import main
    from sgdl_wrap.benchmarks.reports.verdict import VERDICT_RUNS

    sgdl = [(0.34, 0.36), (0.35, 0.37), (0.33, 0.35)]
    matched = [(0.33, 0.36), (0.345, 0.371), (0.335, 0.349)]
    for name, values in (("sgdl", sgdl), ("normal-matched", matched)):
        _run_result(tmp_path / f"run_ml100k_lightgcn_{VERDICT_RUNS['lightgcn'][name]}.json",
                    values)
    main(["verdict", "--runs-dir", str(tmp_path), "--results-dir", str(tmp_path)])
    record = json.loads((tmp_path / "verdict_ml100k.json").read_text())
    lightgcn = record["models"]["lightgcn"]
    [comparison] = lightgcn["comparisons"]
    assert (comparison["treatment"], comparison["baseline"]) == ("sgdl", "normal-matched")
    a, b = np.array(sgdl)[:, 0], np.array(matched)[:, 0]
    measured = comparison["recall@20"]
    assert measured["seeds"] == [0, 1, 2]
    assert measured["mean"] == pytest.approx((a - b).mean())
    one_sided = stats.ttest_rel(a, b, alternative="greater").pvalue
    assert measured["p_better"] == pytest.approx(one_sided)
    assert measured["p_two_sided"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert lightgcn["missing"] == ["normal", "sgdl-as-published", "sgdl-frozen"]
    table = (tmp_path / "verdict_ml100k.md").read_text()
    assert "| lightgcn | sgdl − normal-matched | learned weights vs matched schedule |" in table
    assert "Not run yet: lightgcn: normal_authors-budget-400" in table
