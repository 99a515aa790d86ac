"""Writes benchmark results: a JSON record plus a short markdown table per result.

Every record carries what is needed to judge and repeat it: the command, the git commit,
the torch version, the CPU/GPU, the thread count, the seeds and the wall time.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["RESULTS_DIR", "environment", "markdown_table", "results_folder", "write_result"]

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def results_folder(kind: str) -> Path:
    """Where committed results of one kind live: ``runs``, ``tables``, ``figures``,
    ``studies`` or ``tuning`` under ``benchmarks/results/``."""
    return RESULTS_DIR / kind


@functools.cache
def _git_commit() -> str:
    # Cached: a long run reports the commit it started from, not one made while it ran.
    # A copy of the tree without .git (e.g. on a remote GPU machine) is told its commit.
    if os.environ.get("SGDL_GIT_COMMIT"):
        return os.environ["SGDL_GIT_COMMIT"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
            text=True, check=True, cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


_git_commit()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str = "cpu") -> dict[str, Any]:
    """The machine and software a result was measured on."""
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    return {
        "git_commit": _git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "gpu": gpu,
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _command_line() -> str:
    """The command as typed: ``sgdl-wrap ...``, or ``python -m sgdl_wrap.benchmarks[.module]
    ...`` for this package's modules."""
    script = Path(sys.argv[0]).resolve()
    arguments = shlex.join(sys.argv[1:])
    if script.name == "sgdl-wrap":
        return f"sgdl-wrap {arguments}".rstrip()
    package = Path(__file__).resolve().parents[1]
    if script.is_relative_to(package):
        parts = [p for p in script.relative_to(package).with_suffix("").parts if p != "__main__"]
        return f"python -m {'.'.join(['sgdl_wrap.benchmarks', *parts])} {arguments}".rstrip()
    return f"python {shlex.join(sys.argv)}"


def atomic_write(path: Path, content: str | bytes) -> None:
    """Write ``content`` to ``path`` so that a reader sees the old file or the whole new one
    (a temporary file in the same directory, then :func:`os.replace`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(content, bytes) else "w"
    with tempfile.NamedTemporaryFile(mode, dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(content)
    os.replace(tmp.name, path)


def write_result(
    name: str,
    payload: dict[str, Any],
    table: str,
    *,
    seeds: Sequence[int],
    wall_time_s: float,
    device: str = "cpu",
    title: str | None = None,
    results_dir: Path,
) -> Path:
    """Write ``<name>.json`` and ``<name>.md`` under ``results_dir``; returns the JSON path."""
    command = _command_line()
    record = {
        "name": name,
        "command": command,
        "seeds": list(seeds),
        "wall_time_s": round(wall_time_s, 3),
        "environment": environment(device),
        **payload,
    }
    json_path = results_dir / f"{name}.json"
    atomic_write(json_path, json.dumps(record, indent=2, sort_keys=False) + "\n")
    env = record["environment"]
    threads = env["torch_threads"]
    footer = (
        f"\n`{command}` — commit {env['git_commit']}, torch {env['torch']}, {env['cpu']}"
        f"{', ' + env['gpu'] if env['gpu'] else ''}, {threads} thread{'s' * (threads != 1)}, "
        f"seeds {list(seeds)}, wall time {wall_time_s:.1f} s\n"
    )
    atomic_write(results_dir / f"{name}.md", f"# {title or name}\n\n{table}{footer}")
    return json_path
