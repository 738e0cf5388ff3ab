"""Figures from stored runs (matplotlib; not imported by ``import meanfield``).

Every ``plot_*`` function draws on a given ``ax`` and returns its artists; :func:`plot_file`
writes the figures that fit a run file as PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from .io import load

__all__ = [
    "plot_density_evolution",
    "plot_density_2d",
    "marginal_2d",
    "density_planes",
    "pick_times",
    "plot_risk",
    "plot_file",
]


def plot_density_evolution(
    ax: Any,
    coord: np.ndarray,
    times: np.ndarray,
    density: np.ndarray,
    *,
    max_curves: int = 8,
    label: str = "r",
    log: bool = False,
) -> list:
    """Density curves at (up to ``max_curves``) output times, coloured by time.

    Parameters
    ----------
    coord : array of shape ``(n_cells,)``
    times : array of shape ``(n_times,)``
    density : array of shape ``(n_times, n_cells)``
    """
    picks = np.unique(np.linspace(0, len(times) - 1, min(max_curves, len(times))).round()).astype(
        int
    )
    cmap = plt.get_cmap("viridis")
    artists = []
    for j, i in enumerate(picks):
        colour = cmap(j / max(len(picks) - 1, 1))
        artists += ax.plot(coord, density[i], color=colour, lw=1.4, label=f"t = {times[i]:g}")
    support = np.nonzero(density.max(axis=0) > 1e-6 * density.max())[0]
    if support.size:
        ax.set_xlim(coord[support[0]], coord[support[-1]])
    if log:
        ax.set_yscale("log")
        ax.set_ylim(1e-4 * density.max(), 2 * density.max())
    ax.set_xlabel(f"${label}$")
    ax.set_ylabel(f"density of ${label}$" + (" (log scale)" if log else ""))
    ax.legend(fontsize="small", frameon=False, ncols=2 if log else 1)
    return artists


def pick_times(n_times: int, count: int) -> np.ndarray:
    """Up to ``count`` frame indices spread evenly over ``n_times`` frames, ends included."""
    return np.unique(np.linspace(0, n_times - 1, min(count, n_times)).round()).astype(int)


def plot_density_2d(
    ax: Any,
    x: np.ndarray,
    y: np.ndarray,
    density: np.ndarray,
    *,
    labels: tuple[str, str] = ("q_0", "q_1"),
    vmax: float | None = None,
) -> Any:
    """A 2-D density (cell averages, shape ``(len(x), len(y))``) as an image on its cells.

    For a density of more axes pass the 2-D marginal (:func:`marginal_2d`).
    """
    image = ax.pcolormesh(
        x,
        y,
        density.T,
        shading="nearest",
        cmap="magma_r",
        vmin=0.0,
        vmax=vmax if vmax is not None else density.max(),
    )
    ax.set_xlabel(f"${labels[0]}$")
    ax.set_ylabel(f"${labels[1]}$")
    return image


def marginal_2d(density: np.ndarray, spacing: float) -> np.ndarray:
    """The law of the first two axes of a density of 2 or more axes (2-D is returned unchanged).

    ``spacing`` is the volume of a cell of the summed axes (the product of their spacings).
    """
    return (
        density if density.ndim == 2 else density.sum(axis=tuple(range(2, density.ndim))) * spacing
    )


def density_planes(group: dict, axes_names: tuple[str, ...]) -> tuple:
    """``(x, y, planes)`` of a stored density of 2 or more axes: the coordinates of the first
    two axes and, per frame, the density of those two (the marginal over the other axes)."""
    spacing = 1.0
    for name in axes_names[2:]:
        coord = group[name]
        spacing *= float(coord[1] - coord[0])
    planes = [marginal_2d(d, spacing) for d in group["density"]]
    return group[axes_names[0]], group[axes_names[1]], planes


def plot_risk(ax: Any, times: np.ndarray, risk: np.ndarray, *, label: str = "PDE") -> list:
    """Risk against time on a log scale."""
    artists = ax.semilogy(times, risk, "o-", ms=3, lw=1.4, label=label)
    ax.set_xlabel("$t$")
    ax.set_ylabel(r"risk $R(\rho_t)$")
    ax.grid(True, which="both", alpha=0.3)
    return artists


def plot_file(path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the figures that fit the run file ``path`` into ``out_dir``; return their paths."""
    data = load(path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    pde = data.groups.get("pde")
    if pde is not None and "density" in pde:
        dims = data.dims["pde"]["density"]
        if len(dims) == 2:
            coord_name = dims[1]
            fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
            for ax, log in zip(axes[:2], (False, True), strict=True):
                plot_density_evolution(
                    ax, pde[coord_name], pde["time"], pde["density"], label=coord_name, log=log
                )
            plot_risk(axes[2], pde["time"], pde["risk"])
            stem = Path(path).stem
            target = out_dir / f"{stem}-pde.png"
            fig.savefig(target, dpi=150)
            plt.close(fig)
            written.append(target)
        elif len(dims) >= 3:
            target = out_dir / f"{Path(path).stem}-pde.png"
            written.append(_plot_density_panels(pde, dims[1:], target))
    return written


def _plot_density_panels(pde: dict, axes_names: tuple, target: Path) -> Path:
    """Density at up to four times (2-D, or the marginal of the first two axes) and risk."""
    picks = pick_times(len(pde["time"]), 4)
    x, y, planes = density_planes(pde, axes_names)
    fig, axes = plt.subplots(
        1, len(picks) + 1, figsize=(3.6 * (len(picks) + 1), 3.4), constrained_layout=True
    )
    for ax, i in zip(axes[:-1], picks, strict=False):
        plot_density_2d(ax, x, y, planes[i], labels=axes_names[:2])
        ax.set_title(f"t = {pde['time'][i]:g}", fontsize="small")
    plot_risk(axes[-1], pde["time"], pde["risk"])
    fig.savefig(target, dpi=150)
    plt.close(fig)
    return target
