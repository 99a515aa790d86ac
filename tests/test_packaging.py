"""The distribution as a user installs it: one top-level package, one console command."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                    str(folder), str(ROOT)], check=True, capture_output=True)
    (path,) = folder.glob("sgdl_wrap-*.whl")
    return path


def test_the_wheels_only_top_level_package_is_sgdl_wrap(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"sgdl_wrap"}
    for module in ("sgdl_wrap/adapters/lightgcn.py", "sgdl_wrap/benchmarks/cli.py",
                   "sgdl_wrap/benchmarks/studies/speed.py", "sgdl_wrap/phase2/pipeline.py",
                   "sgdl_wrap/py.typed", "sgdl_wrap/adapters/py.typed"):
        assert module in names
    assert not any("/results/" in name or "/cache/" in name for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "sgdl-wrap = sgdl_wrap.benchmarks.cli:main" in text


def test_the_console_command_and_the_module_form_agree():
    for command in (["sgdl-wrap", "--help"], [sys.executable, "-m", "sgdl_wrap.benchmarks",
                                              "--help"]):
        if command[0] == "sgdl-wrap":
            command[0] = str(Path(sys.executable).with_name("sgdl-wrap"))
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        for sub in ("run", "reproduce", "tune", "verdict", "demo"):
            assert sub in result.stdout


def test_the_demo_runs_offline_and_draws_the_weights(tmp_path, capsys):
    import json

    from sgdl_wrap.benchmarks.cli import main

    main(["demo", "--epochs", "6", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "| Normal |" in printed and "| SGDL |" in printed
    record = json.loads((tmp_path / "demo.json").read_text())
    assert set(record["runs"]) == {"normal", "sgdl"}
    assert record["runs"]["sgdl"]["switch_epoch"] is not None
    assert (tmp_path / "demo_weights.png").stat().st_size > 0
