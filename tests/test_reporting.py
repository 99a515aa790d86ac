import json

import pytest

from benchmarks import reporting


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
