"""Figures from stored run and study files only (``meanfield plot FILE -o DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from meanfield.io import load
from meanfield.plotting import density_planes, pick_times, plot_density_2d
from meanfield.plotting import plot_file as plot_pde_file

__all__ = ["plot_any", "plot_study", "plot_particles_vs_pde", "plot_particles", "plot_sweep"]


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def plot_any(path: str | Path, out_dir: str | Path) -> list[Path]:
    """Every figure that fits the file: PDE, particles against the PDE, study."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load(path)
    written = list(plot_pde_file(path, out_dir)) if "pde" in data.groups else []
    if "particles" in data.groups and "pde" in data.groups:
        written += plot_particles_vs_pde(data, out_dir, Path(path).stem)
    elif "particles" in data.groups:
        written.append(plot_particles(data, out_dir, Path(path).stem))
    if "study" in data.groups:
        written += plot_study(data, out_dir, Path(path).stem)
    if "sweep" in data.groups:
        written.append(plot_sweep(data, out_dir, Path(path).stem))
    return written


def plot_sweep(data: Any, out_dir: Path, stem: str) -> Path:
    """Risk against time for every run of a sweep, and the last risk against the swept value."""
    sweep = data.groups["sweep"]
    key = str(data.group_attrs["sweep"].get("swept_key", "value"))
    values, times, risk = sweep["run"], sweep["time"], sweep["risk"]
    fig, (ax_t, ax_v) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(values)))
    for j, (value, colour) in enumerate(zip(values, colours, strict=True)):
        ax_t.semilogy(times, risk[:, j], "o-", ms=3, color=colour, label=f"{value:g}")
    ax_t.set_xlabel("$t$")
    ax_t.set_ylabel(r"risk $R(\rho_t)$")
    ax_t.legend(title=key, fontsize="x-small", frameon=False, ncols=2)
    ax_v.semilogy(values, risk[-1], "o-", color="k")
    ax_v.set_xlabel(key)
    ax_v.set_ylabel(f"risk at t = {times[-1]:g}")
    ax_v.grid(True, which="both", alpha=0.3)
    return _save(fig, out_dir / f"{stem}-sweep.png")


def plot_particles(data: Any, out_dir: Path, stem: str) -> Path:
    """A particle-only run (p-spin): risk (test loss) against time, replica mean and range, and
    the signed residuals on f > 0 and f < 0 when the model records them."""
    part = data.groups["particles"]
    residuals = "residual_pos" in part
    fig, axes = plt.subplots(
        1,
        2 if residuals else 1,
        figsize=(11 if residuals else 5.5, 4),
        constrained_layout=True,
        squeeze=False,
    )
    ax = axes[0, 0]
    risk, t = part["risk"], part["time"]
    ax.fill_between(t, risk.min(axis=1), risk.max(axis=1), alpha=0.3, label="replica range")
    ax.semilogy(t, risk.mean(axis=1), "o-", ms=3, label="mean over replicas")
    ax.set_xlabel("$t$")
    ax.set_ylabel("risk (test loss for p-spin)")
    ax.legend(frameon=False)
    if residuals:
        ax = axes[0, 1]
        for key, label in (
            ("residual_pos", r"$\langle (f - f_n) 1_{f > 0}\rangle$"),
            ("residual_neg", r"$\langle (f_n - f) 1_{f < 0}\rangle$"),
        ):
            ax.plot(t, part[key].mean(axis=1), "o-", ms=3, label=label)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xlabel("$t$")
        ax.set_ylabel("signed residual")
        ax.legend(frameon=False)
    return _save(fig, out_dir / f"{stem}-particles.png")


def plot_particles_vs_pde(data: Any, out_dir: Path, stem: str) -> list[Path]:
    """Risk against time (PDE line, particle mean and replica band) and density of the reduced
    coordinate (PDE curves over particle histograms)."""
    pde, part = data.groups["pde"], data.groups["particles"]
    fig, (ax_r, ax_d) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    ax_r.semilogy(pde["time"], pde["risk"], "k-", lw=1.5, label="PDE")
    risk = part["risk"]  # (T, R)
    ax_r.fill_between(
        part["time"],
        risk.min(axis=1),
        risk.max(axis=1),
        alpha=0.3,
        label="particles, replica range",
    )
    ax_r.semilogy(part["time"], risk.mean(axis=1), "o", ms=4, label="particles, mean")
    ax_r.set_xlabel("$t$")
    ax_r.set_ylabel("risk")
    ax_r.legend(frameon=False)
    if len(data.dims["pde"]["density"]) > 2:
        plt.close(fig)
        return [_plot_particles_over_density(data, out_dir, stem)]
    coord = data.dims["pde"]["density"][1]
    picks = np.unique(np.linspace(0, len(part["time"]) - 1, 4).round().astype(int))
    colours = plt.get_cmap("viridis")(np.linspace(0, 1, len(picks)))
    for c, i in zip(colours, picks, strict=True):
        t = part["time"][i]
        j = int(np.argmin(np.abs(pde["time"] - t)))
        ax_d.hist(part["reduced"][i, ..., 0].ravel(), bins=80, density=True, color=c, alpha=0.35)
        ax_d.plot(pde[coord], pde["density"][j], color=c, lw=1.5, label=f"t = {t:g}")
    ax_d.set_xlabel(f"${coord}$")
    ax_d.set_ylabel("density (PDE lines, particle histograms)")
    ax_d.set_xlim(0, np.quantile(part["reduced"][..., 0], 0.999) * 1.1)
    ax_d.legend(frameon=False)
    return [_save(fig, out_dir / f"{stem}-particles.png")]


def _plot_particles_over_density(data: Any, out_dir: Path, stem: str) -> Path:
    """2-D (or the first two axes of 3-D) PDE density at four times, particles on top."""
    pde, part = data.groups["pde"], data.groups["particles"]
    names = data.dims["pde"]["density"][1:]
    x, y, marginals = density_planes(pde, names)
    picks = pick_times(len(part["time"]), 4)
    fig, axes = plt.subplots(
        1, len(picks), figsize=(3.8 * len(picks), 3.6), constrained_layout=True, squeeze=False
    )
    window = _support_window(x, y, marginals)
    for ax, i in zip(axes[0], picks, strict=True):
        t = part["time"][i]
        j = int(np.argmin(np.abs(pde["time"] - t)))
        image = plot_density_2d(ax, x, y, marginals[j], labels=names[:2])
        points = part["reduced"][i, 0, :MAX_SCATTER]  # replica 0, (<= MAX_SCATTER, k)
        ax.plot(
            points[:, 0],
            points[:, 1],
            ".",
            color="tab:cyan",
            ms=2.5,
            mew=0,
            alpha=0.8,
            label=f"particles (replica 0, {len(points)} shown)",
        )
        ax.set_xlim(window[0])
        ax.set_ylim(window[1])
        ax.set_title(f"t = {t:g}", fontsize="small")
    fig.colorbar(image, ax=axes[0, -1], label="PDE density")
    axes[0, 0].legend(fontsize="x-small", frameon=False, loc="upper right")
    return _save(fig, out_dir / f"{stem}-particles.png")


#: at most this many particles are drawn over a 2-D density (more hide it)
MAX_SCATTER = 300


def _support_window(x: np.ndarray, y: np.ndarray, densities: list) -> tuple:
    """Axis limits around the cells where any frame's density exceeds 1e-3 of its maximum."""
    mask = np.zeros_like(densities[0], dtype=bool)
    for rho in densities:
        mask |= rho > 1e-3 * rho.max()
    ix, iy = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    pad_x, pad_y = 0.1 * (x[ix[-1]] - x[ix[0]]), 0.1 * (y[iy[-1]] - y[iy[0]])
    return (
        (max(x[0], x[ix[0]] - pad_x), min(x[-1], x[ix[-1]] + pad_x)),
        (max(y[0], y[iy[0]] - pad_y), min(y[-1], y[iy[-1]] + pad_y)),
    )


def plot_study(data: Any, out_dir: Path, stem: str) -> list[Path]:
    """Log-log errors with fitted slopes, N Var with its prediction, and a QQ plot."""
    study = data.groups["study"]
    n, times = study["n"], study["time"]
    found = {
        k.split("/")[1]
        for k in data.groups
        if k.startswith("study/") and k.count("/") == 1 and k != "study/raw"
    }
    order = ("risk", "mean_r", "second_moment_r", "w1", "ks")
    names = [k for k in order if k in found] + sorted(found - set(order))
    # a second row (N Var against its CLT prediction) only where some observable has N Var
    rows = 2 if any("n_var" in data.groups[f"study/{k}"] for k in names) else 1
    fig, axes = plt.subplots(
        rows,
        len(names),
        figsize=(4 * len(names), 3.9 * rows),
        squeeze=False,
        constrained_layout=True,
    )
    for col, name in enumerate(names):
        table = data.groups[f"study/{name}"]
        _plot_errors(axes[0, col], n, times, table, name)
        if rows == 2:
            _plot_nvar(axes[1, col], n, times, table, name)
    written = [_save(fig, out_dir / f"{stem}-study.png")]
    moments = [k for k in names if "pde" in data.groups[f"study/{k}"]]
    if moments:
        fig, axes = plt.subplots(
            1, len(moments), figsize=(4 * len(moments), 3.8), squeeze=False, constrained_layout=True
        )
        for ax, name in zip(axes[0], moments, strict=True):
            _plot_qq(ax, data.groups[f"study/{name}"], n, times, name)
        written.append(_save(fig, out_dir / f"{stem}-qq.png"))
    return written


def _plot_errors(ax: Any, n: np.ndarray, times: np.ndarray, table: dict, name: str) -> None:
    values = table["values"]  # (K, R, T)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(times)))
    for t, c in enumerate(colours):
        y = np.nanmean(
            values[..., t] if "pde" not in table else np.abs(values[..., t] - table["pde"][t]),
            axis=1,
        )
        slope, (lo, hi) = table["slope"][t], table["slope_ci"][t]
        ax.loglog(
            n,
            y,
            "o-",
            color=c,
            ms=4,
            label=f"t = {times[t]:g}: slope {slope:.2f} [{lo:.2f}, {hi:.2f}]",
        )
    for power, style in ((-0.5, "--"), (-1.0, ":")):
        ref = np.nanmean(
            values[..., -1] if "pde" not in table else np.abs(values[..., -1] - table["pde"][-1]),
            axis=1,
        )[0]
        ax.loglog(n, ref * (n / n[0]) ** power, "k" + style, lw=1, label=f"$N^{{{power}}}$")
    _n_axis(ax, n)
    ax.set_ylabel(name if "pde" not in table else f"E |error of {name}|")
    ax.legend(fontsize="x-small", frameon=False)


def _plot_nvar(ax: Any, n: np.ndarray, times: np.ndarray, table: dict, name: str) -> None:
    if "n_var" not in table:
        ax.set_axis_off()
        return
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(times)))
    for t, c in enumerate(colours):
        ax.loglog(n, table["n_var"][:, t], "o-", color=c, ms=4, label=f"t = {times[t]:g}")
        if "n_var_predicted" in table:
            ax.axhline(table["n_var_predicted"][t], color=c, ls="--", lw=1)
        if "n_var_predicted_sgd" in table and times[t] > 0:
            ax.loglog(n, table["n_var_predicted_sgd"][:, t], color=c, ls=":", lw=1.2)
    _n_axis(ax, n)
    ax.set_ylabel(f"N Var({name})\n(dashed: CLT; dotted: CLT + SGD step term)")
    ax.legend(fontsize="x-small", frameon=False)


def _n_axis(ax: Any, n: np.ndarray) -> None:
    """Ticks at the swept N only (log axes otherwise crowd their minor labels)."""
    ax.minorticks_off()
    ax.set_xticks(n)
    ax.set_xticklabels([str(int(v)) for v in n])
    ax.set_xlabel("$N$")


def _plot_qq(ax: Any, table: dict, n: np.ndarray, times: np.ndarray, name: str) -> None:
    """Standardised fluctuations at the largest N and last time against N(0, 1)."""
    values = table["values"][-1, :, -1]
    values = values[np.isfinite(values)]
    z = np.sort((values - values.mean()) / values.std(ddof=1))
    q = stats.norm.ppf((np.arange(1, z.size + 1) - 0.5) / z.size)
    p = stats.shapiro(z).pvalue if z.size >= 3 else np.nan
    ax.plot(q, z, "o", ms=3)
    ax.plot(q, q, "k--", lw=1)
    ax.set_title(f"{name}, N = {n[-1]}, t = {times[-1]:g}: Shapiro p = {p:.2f}", fontsize="small")
    ax.set_xlabel("normal quantiles")
    ax.set_ylabel("standardised values")
