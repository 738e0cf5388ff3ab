"""The figures of Rotskoff and Vanden-Eijnden's Experiment 1 (their Fig. 1), per objective.

Each function takes the jobs that :mod:`compare.reproduce.rve_kernel` ran, keyed by
``(objective, n, teacher)``, and draws on given axes or writes one PNG. Every figure names the
objective: ``"collocation"`` is the paper's (4.5), ``"l2"`` the ``L^2(mu)`` flow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from meanfield.backends import get_backend  # noqa: E402
from meanfield.model.rve.sphere_kernel import SphereKernel  # noqa: E402

__all__ = [
    "LABELS",
    "plot_all",
    "plot_level_sets",
    "plot_loss_against_n",
    "plot_training",
    "slice_points",
]

NAME = "rve-kernel"
#: how the figures name each objective
LABELS = {"collocation": "(4.5) as printed (collocation)", "l2": "$L^2(\\mu)$ flow"}
_STYLE = {"collocation": ("C0", "o"), "l2": ("C3", "s")}


def plot_all(
    jobs: Mapping,
    objectives: Sequence[str],
    widths: list[int],
    teachers: list[int],
    settings: Mapping[str, Any],
    out_dir: Path,
    paper: Mapping[int, float],
    paper_factor: float,
) -> list[Path]:
    """Write the experiment's figures into ``out_dir``; return their paths.

    ``rve-kernel-levelsets[-<objective>].png`` (no suffix for the first objective),
    ``rve-kernel-loss.png`` and ``rve-kernel-training.png``.
    """
    written = []
    for k, objective in enumerate(objectives):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, constrained_layout=True)
        job = jobs[objective, widths[-1], teachers[0]]
        s = settings[objective]
        plot_level_sets(axes, SphereKernel(s.d, s.alpha, teachers[0]), job["c"], job["y"])
        fig.suptitle(LABELS.get(objective, objective))
        name = f"{NAME}-levelsets.png" if k == 0 else f"{NAME}-levelsets-{objective}.png"
        written.append(_save(fig, out_dir / name))
    fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    plot_loss_against_n(ax, jobs, objectives, widths, teachers, paper, paper_factor)
    written.append(_save(fig, out_dir / f"{NAME}-loss.png"))
    fig, axes = plt.subplots(
        1,
        len(objectives),
        figsize=(7 * len(objectives), 4.5),
        sharey=True,
        constrained_layout=True,
        squeeze=False,
    )
    for ax, objective in zip(axes[0], objectives, strict=True):
        plot_training(ax, jobs, objective, widths, teachers, settings[objective])
    written.append(_save(fig, out_dir / f"{NAME}-training.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def slice_points(model: SphereKernel, points: int = 181) -> tuple[np.ndarray, ...]:
    """The grid ``x = sqrt(d) (sin t cos p, sin t sin p, cos t, 0, ...)``: ``p, t, x``."""
    p, t = np.meshgrid(np.linspace(0.0, 2 * np.pi, 2 * points - 1), np.linspace(0.0, np.pi, points))
    x = np.zeros((*p.shape, model.d))
    x[..., 0], x[..., 1], x[..., 2] = np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)
    return p, t, math.sqrt(model.d) * x


def plot_level_sets(axes: Any, model: SphereKernel, c: np.ndarray, y: np.ndarray) -> list:
    """Level sets of ``f`` and ``f_n`` on the 2-sphere slice, in ``(p, t)`` coordinates.

    The centres are shown at the direction of their first three coordinates, marker area
    proportional to ``|c_i|`` (filled: ``c_i > 0``, open: ``c_i < 0``); a centre far from the
    slice (large ``|y_4|, |y_5|``) is drawn fainter, ``alpha = |y_123| / sqrt(d)``.
    """
    backend = get_backend("numpy")
    task = model.task(backend.asarray)
    p, t, x = slice_points(model)
    flat = x.reshape(1, -1, model.d)
    values = [
        model.pspin.target(x, task.tensor, np),
        task.predict(flat, c[None], y[None], np).reshape(p.shape),
    ]
    span = float(np.max(np.abs(values[0])))
    levels = np.linspace(-span, span, 21)
    head = np.linalg.norm(y[:, :3], axis=1)
    theta = np.arccos(np.clip(y[:, 2] / head, -1.0, 1.0))
    phi = np.mod(np.arctan2(y[:, 1], y[:, 0]), 2 * np.pi)
    size = 80 * np.abs(c) / np.max(np.abs(c))
    shade = np.clip(head / math.sqrt(model.d), 0.1, 1.0)
    artists = []
    for ax, value, title in zip(
        axes, values, ("target $f$", f"network $f_n$, n = {c.size}"), strict=True
    ):
        artists.append(ax.contourf(p, t, value, levels=levels, cmap="RdBu_r", extend="both"))
        ax.contour(p, t, value, levels=levels, colors="k", linewidths=0.3)
        colours = np.zeros((c.size, 4))
        colours[:, 3] = shade
        ax.scatter(
            phi,
            theta,
            s=size,
            facecolors=np.where((c > 0)[:, None], colours, 0.0),
            edgecolors=colours,
            linewidths=0.8,
        )
        ax.set_xlabel("azimuth $p$")
        ax.set_title(title)
        ax.set_xlim(0, 2 * np.pi)
        ax.set_ylim(np.pi, 0)
    axes[0].set_ylabel("polar angle $t$")
    axes[0].figure.colorbar(artists[0], ax=axes, label="value on the slice", shrink=0.9)
    return artists


def plot_loss_against_n(
    ax: Any,
    jobs: Mapping,
    objectives: Sequence[str],
    widths: list[int],
    teachers: list[int],
    paper: Mapping[int, float],
    paper_factor: float,
) -> list:
    """Test loss against ``n`` per objective: every teacher, the median, the paper's values."""
    artists = []
    n = np.array(widths, dtype=float)
    for objective in objectives:
        colour, marker = _STYLE.get(objective, ("k", "D"))
        table = np.array(
            [[float(jobs[objective, w, t]["test_loss"]) for t in teachers] for w in widths]
        )
        label = LABELS.get(objective, objective)
        for k in range(len(teachers)):
            artists += ax.loglog(
                n,
                table[:, k],
                marker,
                color=colour,
                ms=4,
                mfc="none",
                alpha=0.6,
                label=f"{label}: each teacher" if k == 0 else None,
            )
        artists += ax.loglog(
            n, np.median(table, axis=1), "-", color=colour, lw=1.5, label=f"{label}: median"
        )
    artists += ax.loglog(n, 0.1 * n[0] / n, "k:", lw=1, label="$\\propto n^{-1}$")
    paper_n = np.array(sorted(paper))
    values = np.array([paper[k] for k in paper_n])
    artists.append(
        ax.errorbar(
            paper_n,
            values,
            yerr=[values * (1 - 1 / paper_factor), values * (paper_factor - 1)],
            fmt="k*",
            ms=9,
            capsize=3,
            label="paper (read off Fig. 1)",
        )
    )
    ax.minorticks_off()
    ax.set_xticks(n, [str(int(w)) for w in widths])
    ax.set_xlabel("number of units $n$")
    ax.set_ylabel("test loss $\\frac{1}{2} E (f - f_n)^2$")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize="small")
    return artists


def plot_training(
    ax: Any, jobs: Mapping, objective: str, widths: list[int], teachers: list[int], s: Any
) -> list:
    """Closed-form loss against the step for every run of ``objective``; a cross marks a run
    that hit ``max_steps`` before the loss was flat."""
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(widths)))
    artists = []
    for n, colour in zip(widths, colours, strict=True):
        for k, teacher in enumerate(teachers):
            job = jobs[objective, n, teacher]
            steps = np.maximum(np.asarray(job["record_steps"]), 1)
            artists += ax.loglog(
                steps, job["loss"], color=colour, lw=1, label=f"n = {n}" if k == 0 else None
            )
            if not bool(job["converged"]):
                artists += ax.loglog(steps[-1:], job["loss"][-1:], "x", color=colour, ms=7)
    ax.axvline(max(s.noise_steps, 1), color="k", ls=":", lw=1, label="noise switched off")
    ax.axvline(s.steps, color="grey", ls="--", lw=1, label="first chunk ends")
    ax.set_title(f"{LABELS.get(objective, objective)}, step {s.step:g}", fontsize=10)
    ax.set_xlabel("step (step 0 drawn at 1); x: not flat at max_steps")
    ax.set_ylabel("$L^2(\\mu)$ loss (closed form)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize="small")
    return artists
