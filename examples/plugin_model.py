"""A plug-in model: your own model from one file, run by meanfield and checked against its exact
solution.

What it shows: ``examples/my_model.py`` declares a model outside the package (a linear unit
``theta x`` on inputs ``x ~ N(0, s^2)``, with its config keys); a config given as a Python dict
names it ``"my_model:ENTRY"``; ``meanfield.run`` solves its distributional dynamics with noise on
a 1-D grid and runs 4 x 1,000 Langevin particles beside it. The exact solution is a normal law
``N(m(t), v(t))`` (``my_model.exact``), so the figure puts the PDE's density, mean and standard
deviation, and the particles', on the exact curves.

Run (from any directory):

    python examples/plugin_model.py [OUTDIR]

Figures (and ``summary.json``, the printed numbers) go to ``OUTDIR``, by default
``./figures-plugin_model`` in the current directory. Time: 2 to 3 s on two shared CPU cores.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
# "my_model:ENTRY" is imported by name from sys.path: put this folder first (running the script
# does it already; this makes it explicit, and works when main() is imported from elsewhere)
sys.path.insert(0, str(HERE))

from my_model import ScaledLinear, exact  # noqa: E402

import meanfield  # noqa: E402

NAME = "plugin_model"

TEACHER, SCALE = 1.5, 0.8
MEAN0, STD0, BETA = -0.5, 0.3, 20.0

# The config as a dict: the same tables as a TOML file. The model's own keys (teacher, scale)
# are checked like a built-in model's: a typo raises a ConfigError naming the key.
CONFIG = {
    "model": {"name": "my_model:ENTRY", "teacher": TEACHER, "scale": SCALE},
    "init": {"mean": MEAN0, "std": STD0},
    "dynamics": {"t_end": 2.0, "save_times": {"count": 9}, "beta": BETA},
    "pde": {"cells": 200, "bounds": [[-3.0, 5.0]]},
    "particles": {"n": 1000, "replicas": 4, "method": "noisy_sgd", "step": 1e-3, "seed": 0},
}


def main(out_dir: Path) -> dict:
    start = time.perf_counter()
    tree = meanfield.run(CONFIG)
    pde, particles = tree["pde"], tree["particles"]
    t = pde["time"].values
    theta = pde["theta"].values  # the grid axis, named by axis_names
    h = theta[1] - theta[0]
    density = pde["density"].values  # (time, cells): cell averages
    units = particles["reduced"].values[..., 0]  # (time, replica, unit)

    m_exact, s_exact = exact(ScaledLinear(TEACHER, SCALE), t, MEAN0, STD0, BETA)
    m_pde = density @ theta * h
    s_pde = np.sqrt(density @ theta**2 * h - m_pde**2)
    m_gd = units.mean(axis=(1, 2))  # mean over all units of all replicas
    s_gd = units.std(axis=2).mean(axis=1)  # spread within a network, mean over replicas
    # L1 distance between the PDE's cell averages and the exact normal density at the centres
    gauss = np.exp(-0.5 * ((theta - m_exact[:, None]) / s_exact[:, None]) ** 2)
    gauss /= np.sqrt(2.0 * np.pi) * s_exact[:, None]
    l1 = np.abs(density - gauss).sum(axis=1) * h

    print(
        f"meanfield.run: model {CONFIG['model']['name']} from {HERE / 'my_model.py'}, "
        f"{time.perf_counter() - start:.1f} s"
    )
    print(
        f"PDE: {len(theta)} cells of {h:.3f}; particles: {units.shape[1]} x {units.shape[2]} "
        f"units, {particles.attrs['engine']} engine"
    )
    print("    t  m exact  PDE-exact  part.-exact   std exact  PDE-exact  part.-exact  L1(PDE)")
    for i in range(len(t)):
        print(
            f"{t[i]:5.2f}  {m_exact[i]:7.4f}  {m_pde[i] - m_exact[i]:+9.1e}  "
            f"{m_gd[i] - m_exact[i]:+11.1e}   {s_exact[i]:9.4f}  {s_pde[i] - s_exact[i]:+9.1e}  "
            f"{s_gd[i] - s_exact[i]:+11.1e}  {l1[i]:7.1e}"
        )

    # ---- the figure: densities (a), mean (b), standard deviation (c) on the exact solution
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    ax = axes[0]
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, 4))
    for colour, i in zip(colours, (0, 2, 4, len(t) - 1), strict=True):
        ax.plot(theta, density[i], "-", color=colour, lw=1.5, label=f"PDE, t = {t[i]:g}")
        ax.plot(theta, gauss[i], "--", color="k", lw=0.8)
    ax.hist(
        units[-1].ravel(),
        bins=np.arange(theta[0], theta[-1], 0.1),
        density=True,
        color=colours[-1],
        alpha=0.3,
        label=f"particles, t = {t[-1]:g}",
    )
    ax.plot([], [], "--", color="k", lw=0.8, label=r"exact $N(m(t), v(t))$")
    ax.set_xlim(-2.0, 4.0)
    ax.set_xlabel(r"$\theta$")
    ax.set_ylabel("density")
    ax.set_title("(a) the law of a unit")
    ax.legend(frameon=False, fontsize="small")

    fine = np.linspace(t[0], t[-1], 200)
    m_fine, s_fine = exact(ScaledLinear(TEACHER, SCALE), fine, MEAN0, STD0, BETA)
    for ax, exact_curve, pde_values, part_values, what in (
        (axes[1], m_fine, m_pde, m_gd, r"mean of $\theta$"),
        (axes[2], s_fine, s_pde, s_gd, r"standard deviation of $\theta$"),
    ):
        ax.plot(fine, exact_curve, "k-", lw=1, label="exact")
        ax.plot(t, pde_values, "o", mfc="none", ms=7, label="PDE")
        ax.plot(
            t,
            part_values,
            "x",
            ms=6,
            label=f"Langevin particles ({units.shape[1]} x {units.shape[2]})",
        )
        ax.set_xlabel("time $t$")
        ax.set_ylabel(what)
        ax.legend(frameon=False, fontsize="small")
    axes[1].set_title(rf"(b) $m(t) \to$ teacher = {TEACHER}")
    axes[2].set_title(r"(c) $\sqrt{v(t)}$, $v(t) = v(0) + 4t/\beta$")
    figure = out_dir / "plugin-model.png"
    fig.savefig(figure, dpi=100)
    plt.close(fig)
    print(f"wrote {figure}")

    summary = {
        "time": t.tolist(),
        "mean_exact": m_exact.tolist(),
        "mean_pde": m_pde.tolist(),
        "mean_particles": m_gd.tolist(),
        "std_exact": s_exact.tolist(),
        "std_pde": s_pde.tolist(),
        "std_particles": s_gd.tolist(),
        "l1_pde": l1.tolist(),
        "cell": float(h),
        "figures": [str(figure)],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"total {time.perf_counter() - start:.1f} s")
    return summary


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd() / f"figures-{NAME}")
