"""A run and its plots: MMN's isotropic example, the PDE beside one-pass SGD, from Python.

What it shows: ``meanfield.run`` on the shipped config ``data/configs/mmn-isotropic.toml``,
shrunk with overrides (1,200 cells instead of 2,400; 4 x 400 units instead of 4 x 800; SGD step
5e-5 instead of 2e-5, so 4e5 steps), returned as an xarray ``DataTree`` (nodes ``pde`` and
``particles``). It then draws, with matplotlib, the figure a paper would show: the risk of the
distributional dynamics (DD) against time with the SGD networks' exact risk on it, and the
density of ``|w|`` at the last time against a histogram of the units. Last, ``meanfield.plot``
writes the standard figures of ``meanfield plot``.

Run (from any directory):

    python examples/run_and_plot.py [OUTDIR]

Figures (and ``summary.json``, the printed numbers) go to ``OUTDIR``, by default
``./figures-run_and_plot`` in the current directory. Time: 12 to 15 s on two shared CPU cores
(longer the first time, when the compiled particle kernels are built and cached).
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

import meanfield  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "data" / "configs" / "mmn-isotropic.toml"
NAME = "run_and_plot"

# The shipped config as it is, but smaller: each override is "section.key=value" (TOML value),
# exactly what `meanfield run --set` takes.
OVERRIDES = [
    "pde.cells=1200",  # 2,400 shipped; the risk at t = 20 moves by 2 % (grid-convergence)
    "particles.n=400",  # 800 shipped: the O(1/N) bias of the SGD risk doubles
    "particles.replicas=4",
    "particles.step=5e-5",  # 2e-5 shipped: 4e5 steps instead of 1e6
    "dynamics.save_times={count = 41}",  # every 0.5 up to t = 20, for a smooth curve
]


def main(out_dir: Path) -> dict:
    start = time.perf_counter()
    tree = meanfield.run(CONFIG, overrides=OVERRIDES)  # a temporary HDF5 file, read back
    run_seconds = time.perf_counter() - start
    pde, sgd = tree["pde"], tree["particles"]

    # The PDE's risk R(rho_t) and each replica's exact risk R(mu_N) at the same output times
    t = pde["time"].values
    risk_pde = pde["risk"].values
    risk_sgd = sgd["risk"].values  # (time, replica)
    n_units, n_replicas = sgd.sizes["unit"], sgd.sizes["replica"]
    mean_sgd = risk_sgd.mean(axis=1)
    se_sgd = risk_sgd.std(axis=1, ddof=1) / np.sqrt(n_replicas)

    print(f"meanfield.run: {CONFIG.name} with {len(OVERRIDES)} overrides, {run_seconds:.1f} s")
    print(
        f"PDE: {pde.sizes['r']} cells; SGD: {n_replicas} x {n_units} units, "
        f"step {sgd.attrs['step_size']:g}, engine {sgd.attrs['engine']}"
    )
    print("    t   R(rho_t)   R(mu_N), mean +- 2 se      gap")
    for i in range(0, len(t), 4):  # every 4th saved time: t = 0, 2, 4, ...
        print(
            f"{t[i]:5.1f}   {risk_pde[i]:.4f}    {mean_sgd[i]:.4f} +- {2 * se_sgd[i]:.4f}"
            f"    {mean_sgd[i] - risk_pde[i]:+.4f}"
        )

    # ---- the figure: risk against time (left), density of |w| at the end (right)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, (ax_risk, ax_density) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    ax_risk.semilogy(t, risk_pde, "-", color="k", lw=1.5, label=r"DD (PDE), $R(\rho_t)$")
    ax_risk.errorbar(
        t,
        mean_sgd,
        yerr=2 * se_sgd,
        fmt="o",
        ms=3,
        color="tab:red",
        capsize=2,
        label=rf"SGD, $N = {n_units}$, mean of {n_replicas} $\pm$ 2 se",
    )
    ax_risk.set_xlabel("time $t$")
    ax_risk.set_ylabel("risk")
    ax_risk.set_title("(a) risk")
    ax_risk.legend(frameon=False)

    r = pde["r"].values
    h = r[1] - r[0]
    last = -1
    units = sgd["reduced"].isel(time=last, reduced_axis=0).values.ravel()  # |w|, all replicas
    edges = np.arange(0.0, r[-1] + h, 0.05)
    ax_density.hist(
        units,
        bins=edges,
        density=True,
        color="tab:red",
        alpha=0.35,
        label=rf"SGD units, $|w|$ ({n_replicas} $\times$ {n_units})",
    )
    ax_density.plot(
        r,
        pde["density"].values[last],
        color="k",
        lw=1.2,
        label=rf"DD density of $|w|$ (cells of {h:.4f})",
    )
    ax_density.set_yscale("log")
    ax_density.set_ylim(1e-3, 3.0 * pde["density"].values[last].max())
    ax_density.set_xlim(0, np.quantile(units, 0.999) * 1.1)
    ax_density.set_xlabel("$r = |w|$")
    ax_density.set_ylabel("density")
    ax_density.set_title(f"(b) density of $|w|$ at $t = {t[last]:g}$")
    ax_density.legend(frameon=False, fontsize="small")
    figure = out_dir / "risk-and-density.png"
    fig.savefig(figure, dpi=100)
    plt.close(fig)

    # ---- the standard figures of `meanfield plot` (PDE density panels; particles on the PDE)
    written = meanfield.plot(tree, out_dir)
    for path in [figure, *written]:
        print(f"wrote {path}")

    summary = {
        "time": t.tolist(),
        "risk_pde": risk_pde.tolist(),
        "risk_sgd": mean_sgd.tolist(),
        "risk_sgd_se": se_sgd.tolist(),
        "n": int(n_units),
        "figures": [str(p) for p in [figure, *written]],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"total {time.perf_counter() - start:.1f} s")
    return summary


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd() / f"figures-{NAME}")
