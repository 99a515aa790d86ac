"""The paper's Figures 1, 3, 4 and 5 as PNG files, drawn from cached run records.

Each function takes the SGDL run and (Figure 1 only) the memorization-tracked Normal run
of every model, as written by :func:`sgdl_wrap.benchmarks.running.runner.run`. Needs matplotlib (the
``bench`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["figure1", "figure3", "figure4", "figure5"]

Runs = Mapping[str, dict[str, Any]]
_NAMES = {"neumf": "NeuMF", "cdae": "CDAE", "ngcf": "NGCF", "lightgcn": "LightGCN"}


def _panels(count: int) -> tuple[Any, list[Any]]:
    figure, axes = plt.subplots(1, count, figsize=(4.6 * count, 3.6), squeeze=False)
    return figure, list(axes[0])


def _series(run: dict[str, Any], key: str) -> tuple[list[int], list[float]]:
    points = [(e["epoch"] + 1, e[key]) for e in run["epochs"] if e.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def _switch(axis: Any, run: dict[str, Any]) -> None:
    if run.get("switch_epoch") is not None:
        axis.axvline(run["switch_epoch"] + 1.5, color="grey", linestyle=":", linewidth=1,
                     label="SGDL switches to Phase II")


def _save(figure: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def figure1(sgdl: Runs, normal: Runs, path: Path) -> None:
    """Memory rate of clean and noisy training interactions per epoch, Normal vs SGDL."""
    figure, axes = _panels(len(sgdl))
    for axis, model in zip(axes, sgdl):
        for run, method, style in ((normal[model], "Normal", "--"), (sgdl[model], "SGDL", "-")):
            for kind, color in (("clean", "tab:blue"), ("noisy", "tab:red")):
                axis.plot(*_series(run, f"memory_rate_{kind}"), style, color=color,
                          label=f"{method}, {kind}")
        _switch(axis, sgdl[model])
        axis.set(title=_NAMES.get(model, model), xlabel="epoch", ylabel="memory rate",
                 ylim=(0, 1))
        axis.legend(fontsize=7)
    _save(figure, path)


def figure3(sgdl: Runs, normal: Runs, path: Path) -> None:
    """Memorization precision and recall of SGDL's memorized set per epoch."""
    figure, axes = _panels(len(sgdl))
    for axis, (model, run) in zip(axes, sgdl.items()):
        axis.plot(*_series(run, "memorization_precision"), label="precision")
        axis.plot(*_series(run, "memorization_recall"), label="recall")
        clean = 1 - _noise_share(run)
        if not math.isnan(clean):
            axis.axhline(clean, color="grey", linewidth=1, label="clean share of train")
        _switch(axis, run)
        axis.set(title=_NAMES.get(model, model), xlabel="epoch", ylim=(0, 1))
        axis.legend(fontsize=7)
    _save(figure, path)


def _noise_share(run: dict[str, Any]) -> float:
    histogram = run.get("figure_data", {}).get("loss_histogram")
    if histogram is None or "noisy" not in histogram["counts"]:
        return float("nan")
    noisy, clean = sum(histogram["counts"]["noisy"]), sum(histogram["counts"]["clean"])
    return noisy / (noisy + clean)


def _missing(axis: Any, model: str, what: str) -> bool:
    axis.set_title(_NAMES.get(model, model))
    axis.text(0.5, 0.5, f"no {what} in this run", ha="center", va="center",
              transform=axis.transAxes)
    return True


def figure4(sgdl: Runs, normal: Runs, path: Path) -> None:
    """Per-user-normalised losses at the memorization point, with the fitted mixture."""
    figure, axes = _panels(len(sgdl))
    for axis, (model, run) in zip(axes, sgdl.items()):
        h = run.get("figure_data", {}).get("loss_histogram")
        if h is None and _missing(axis, model, "memorization point"):
            continue
        edges = np.array(h["edges"])
        width = np.diff(edges)
        counts = {k: np.array(v, dtype=float) for k, v in h["counts"].items()}
        total = sum(c.sum() for c in counts.values())
        bottom = np.zeros_like(width)
        colors = {"clean": "tab:blue", "noisy": "tab:red", "all": "tab:grey"}
        for kind, values in counts.items():
            density = values / (total * width)
            axis.bar(edges[:-1], density, width, bottom=bottom, align="edge", alpha=0.6,
                     color=colors[kind], label=kind)
            bottom += density
        grid = np.linspace(0, 1, 300)
        mixture = np.zeros_like(grid)
        for mean, std, weight, name in zip(h["means"], h["stds"], h["weights"],
                                           ("clean component", "noisy component")):
            scale = weight / (std * math.sqrt(2 * math.pi))
            pdf = scale * np.exp(-0.5 * ((grid - mean) / std) ** 2)
            mixture += pdf
            axis.plot(grid, pdf, linewidth=1, label=name)
        axis.plot(grid, mixture, color="black", linewidth=1.2, label="mixture")
        axis.set(title=f"{_NAMES.get(model, model)}, epoch {h['epoch'] + 1} "
                       f"(σ̂ = {h['noise_rate']:.2f})",
                 xlabel="per-user min-max normalised loss", ylabel="density")
        axis.legend(fontsize=7)
    _save(figure, path)


def figure5(sgdl: Runs, normal: Runs, path: Path) -> None:
    """Learned weight against the loss it was computed from, for clean and noisy rows, and
    the weighting function at the epoch's end."""
    figure, axes = _panels(len(sgdl))
    for axis, (model, run) in zip(axes, sgdl.items()):
        w = run.get("figure_data", {}).get("weights")
        if w is None and _missing(axis, model, "Phase II epoch"):
            continue
        loss, weight = np.array(w["loss"]), np.array(w["weight"])
        noisy = np.zeros(loss.size, bool) if w["noisy"] is None else np.array(w["noisy"])
        axis.scatter(loss[~noisy], weight[~noisy], s=3, alpha=0.4, color="tab:blue",
                     label="clean")
        axis.scatter(loss[noisy], weight[noisy], s=3, alpha=0.4, color="tab:red", label="noisy")
        axis.plot(w["function"]["loss"], w["function"]["weight"], color="black",
                  label="g(L), end of epoch")
        axis.set(title=f"{_NAMES.get(model, model)}, epoch {w['epoch'] + 1}",
                 xlabel="loss given to the weighting net (mean in the epoch)",
                 ylabel="learned weight (mean in the epoch)")
        axis.legend(fontsize=7)
    _save(figure, path)
