"""Figures of the MMN reproductions (:mod:`compare.reproduce.mmn`), drawn as the paper does.

Every figure shows the PDE as lines and the SGD ensemble as markers, with bars of one
standard deviation over replicas (the spread of one network, not the error of the mean). Each
function takes the curves of every variant by label and ``keys``, the checked ``[experiment]``
table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_fig1", "plot_nonmonotone", "plot_relu_selection"]

COLOURS = ("C0", "C3", "C2", "C1", "C4")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def _sgd_markers(ax: Any, x: np.ndarray, values: np.ndarray, colour: str, label: str) -> None:
    """Mean over replicas (axis 1) with a bar of one standard deviation."""
    spread = values.std(axis=1, ddof=1) if values.shape[1] > 1 else None
    ax.errorbar(
        x, values.mean(axis=1), yerr=spread, fmt="o", ms=4, color=colour, capsize=2, label=label
    )


def _risk_panel(ax: Any, curves: Mapping[str, Mapping], x_of: Any, xlabel: str) -> None:
    for colour, (label, c) in zip(COLOURS, curves.items(), strict=False):
        tag = f" ({label})" if label else ""
        x = x_of(c)
        ax.plot(x, c["risk_pde"], "-", color=colour, label=f"PDE{tag}")
        _sgd_markers(ax, x, c["risk_sgd"], colour, f"SGD{tag}")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("risk")
    ax.legend(fontsize=8)


def plot_fig1(curves: Mapping[str, Mapping], keys: Mapping, out_dir: Path) -> list[Path]:
    """MMN Fig. 1: the law of ``|w|`` at several times (SGD histogram, PDE density) and the risk
    against time."""
    c = next(iter(curves.values()))
    times = np.asarray(c["time"])
    wanted = keys["hist_times"] if keys.get("hist_times") is not None else list(times[1:5])
    picks = [int(np.argmin(np.abs(times - t))) for t in wanted]
    fig, axes = plt.subplots(1, len(picks) + 1, figsize=(3.3 * (len(picks) + 1), 3.2))
    r = c["centres_r"]
    for ax, i in zip(axes, picks, strict=False):
        units = c["reduced"][i, ..., 0].ravel()
        lo, hi = np.quantile(units, [0.001, 0.999])
        lo, hi = max(0.0, lo - 0.3 * (hi - lo)), hi + 0.3 * (hi - lo)
        heights, _, _ = ax.hist(
            units, bins=np.linspace(lo, hi, 81), density=True, color="0.75", label="SGD"
        )
        ax.plot(r, c["marginal_r"][i], "-", color="C0", label="PDE")
        ax.set_xlim(lo, hi)
        if heights.max() > 20 * np.median(heights[heights > 0]):  # a spike beside a bump
            ax.set_yscale("log")
            ax.set_ylim(1e-3 * heights.max(), 2 * heights.max())
        ax.set_title(f"t = {times[i]:g}")
        ax.set_xlabel("|w|")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=8)
    _risk_panel(axes[-1], curves, lambda cc: cc["time"], "t")
    return [_save(fig, out_dir / "mmn-fig1.png")]


def plot_nonmonotone(curves: Mapping[str, Mapping], keys: Mapping, out_dir: Path) -> list[Path]:
    """Risk and mean ``|w|`` against time for every initial width: PDE lines, SGD markers."""
    fig, (ax_r, ax_m) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    _risk_panel(ax_r, curves, lambda cc: cc["time"], "t")
    for colour, (label, c) in zip(COLOURS, curves.items(), strict=False):
        ax_m.plot(c["time"], c["mean_r"], "-", color=colour, label=f"PDE ({label})")
        _sgd_markers(ax_m, c["time"], c["means_sgd"][..., 0], colour, f"SGD ({label})")
    ax_m.set_xlabel("t")
    ax_m.set_ylabel("mean |w|")
    ax_m.legend(fontsize=8)
    return [_save(fig, out_dir / "mmn-nonmonotone.png")]


def plot_relu_selection(curves: Mapping[str, Mapping], keys: Mapping, out_dir: Path) -> list[Path]:
    """The paper's plot: risk against SGD iteration (PDE line, SGD markers), with an inset of
    the mean ``a``, ``b`` and ``r1``; and the marginals of ``a`` and ``r1`` at the last time."""
    c = next(iter(curves.values()))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    _risk_panel(ax, curves, lambda cc: np.asarray(cc["time"]) / cc["eps"], "SGD iteration")
    inset = ax.inset_axes([0.5, 0.42, 0.46, 0.38])
    x = np.asarray(c["time"]) / c["eps"]
    for a, (name, colour) in enumerate(zip(("a", "b", "r1"), COLOURS, strict=False)):
        inset.plot(x, c[f"mean_{name}"], "-", color=colour, label=f"mean {name}")
        _sgd_markers(inset, x, c["means_sgd"][..., a], colour, "")
    inset.tick_params(labelsize=7)
    inset.legend(fontsize=6, loc="upper left")
    paths = [_save(fig, out_dir / "mmn-relu-selection.png")]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.0))
    last = len(c["time"]) - 1
    for a, (ax, name) in enumerate(zip(axes, ("a", "b", "r1", "r2"), strict=True)):
        ax.hist(
            c["reduced"][last, ..., a].ravel(), bins=60, density=True, color="0.75", label="SGD"
        )
        ax.plot(c[f"centres_{name}"], c[f"marginal_{name}"][last], "-", color="C0", label="PDE")
        ax.set_xlabel(name)
    axes[0].set_ylabel(f"density at t = {c['time'][last]:g}")
    axes[0].legend(fontsize=8)
    paths.append(_save(fig, out_dir / "mmn-relu-selection-marginals.png"))
    return paths
