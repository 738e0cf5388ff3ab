"""The figures of Rotskoff and Vanden-Eijnden's Experiment 2 (their Figs. 2, 3 and 4).

Each function takes the table that :mod:`compare.reproduce.rve_pspin` assembles from the cached
jobs (``table["by_n"][n]`` holds the teachers' loss curves, final values and great-circle
profiles) and writes one PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_loss_curve", "plot_scaling", "plot_circles", "guide_line"]


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def guide_line(ax: Any, n: np.ndarray, values: np.ndarray, power: float, label: str) -> None:
    """A dashed ``n^power`` line through the geometric mean of ``values`` at the first ``n``."""
    n = np.asarray(n, dtype=float)
    anchor = float(np.exp(np.mean(np.log(values))))
    ax.plot(n, anchor * (n / n[0]) ** power, "k--", lw=1, label=label)


def plot_loss_curve(table: dict, n: int, sgd_steps: int, path: Path) -> Path:
    """Their Fig. 2: the test loss against the SGD step at width ``n``, one line per teacher,
    the quench marked; an inset zooms on the quench."""
    entry = table["by_n"][n]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    inset = ax.inset_axes([0.52, 0.45, 0.44, 0.45])
    for k, (steps, loss) in enumerate(entry["curves"]):
        ax.semilogy(steps, loss, lw=1, label=f"teacher {k}" if k < 10 else None)
        late = steps >= 0.9 * sgd_steps
        inset.semilogy(steps[late], loss[late], "o-", ms=2, lw=1)
    for a in (ax, inset):
        a.axvline(sgd_steps, color="k", lw=0.8, ls=":")
    ax.set_xlabel("SGD step")
    ax.set_ylabel(r"test loss $\ell = \frac{1}{2P}\sum (f - f_n)^2$")
    ax.set_title(f"n = {n}: batch n/5, quench to (n/5)$^2$ at the dotted line", fontsize=10)
    inset.set_title("around the quench", fontsize=8)
    inset.tick_params(labelsize=7)
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def plot_scaling(table: dict, path: Path) -> Path:
    """Their Fig. 3: the loss and both signed residuals against ``n``, log-log, one marker per
    teacher, the median joined, ``n^-1`` guides."""
    widths = np.array(table["n"], dtype=float)
    keys = (
        ("loss", r"test loss $\ell$"),
        ("residual_pos", r"$\langle (f - f_n)\, 1_{f > 0}\rangle$"),
        ("residual_neg", r"$\langle (f_n - f)\, 1_{f < 0}\rangle$"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), constrained_layout=True)
    for ax, (key, label) in zip(axes, keys, strict=True):
        medians = []
        for n in table["n"]:
            v = np.array(table["by_n"][n]["final"][key])
            medians.append(np.median(v))
            positive = v[v > 0]
            ax.loglog(
                np.full(positive.size, n),
                positive,
                "o",
                ms=4,
                alpha=0.6,
                color="C0",
                label="one teacher" if n == table["n"][0] else None,
            )
        medians = np.array(medians)
        if np.all(medians > 0):
            ax.loglog(widths, medians, "-", color="C1", lw=1.5, label="median")
            guide_line(ax, widths, medians[:1], -1.0, r"$\propto n^{-1}$")
        ax.set_xlabel("width $n$")
        ax.set_ylabel(label)
        ax.set_xticks(widths, [f"{int(n)}" for n in widths])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def plot_circles(table: dict, n: int, circles: Sequence[tuple[int, int]], path: Path) -> Path:
    """Their Fig. 4: ``f`` and ``f_n`` along great circles ``x_i = sqrt(d) cos t``,
    ``x_j = sqrt(d) sin t`` (the first teacher at width ``n``)."""
    f, fn = table["by_n"][n]["circles"][0]
    t = np.linspace(0.0, 2.0 * np.pi, f.shape[-1])
    fig, axes = plt.subplots(
        1, len(circles), figsize=(5.2 * len(circles), 3.6), constrained_layout=True, squeeze=False
    )
    for ax, fk, fnk, (i, j) in zip(axes[0], f, fn, circles, strict=True):
        ax.plot(t, fk, "k-", lw=1.5, label="target $f$")
        ax.plot(t, fnk, "C3--", lw=1.5, label=f"network $f_n$, n = {n}")
        ax.set_xlabel(rf"$t$ (rad): $x_{i + 1} = \sqrt{{d}}\cos t$, $x_{j + 1} = \sqrt{{d}}\sin t$")
        ax.set_ylabel("value")
        ax.set_xlim(0.0, 2.0 * np.pi)
        ax.legend(frameon=False, fontsize=8, loc="best")
    return _save(fig, path)
