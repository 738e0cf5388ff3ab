"""An LLN/CLT study: population GD ensembles for four N against the PDE, from Python.

What it shows: ``meanfield.study`` on the shipped ``data/configs/mmn-isotropic-study-gd.toml``
(MMN's isotropic model at d = 40, population gradient descent, t up to 1), shrunk with
overrides to 1,200 cells and 32 replicas for each N = 25, 50, 100, 200 (64 shipped). The study
returns an xarray ``DataTree``: ``study/<observable>`` holds, per observable, the values of every
replica, the PDE's value, the bias, ``N Var`` across replicas, the CLT prediction
``Var_rho0(phi_0)`` and the fitted slopes against N (docs/studies.md has the table). The figure:

* (a) the law of large numbers: ``E W1(mu_N, rho_t)`` against N, with the study's fitted slope
  (about -1/2 at t = 0, steeper later, when the O(1/N) bias dominates);
* (b) the bias of the risk, ``E R(mu_N) - R(rho_t)``, against N: O(1/N), with the exact
  ``7.41 / N`` at t = 0;
* (c) the CLT: ``N Var`` of the mean of ``|w|`` against time for every N, on the prediction
  computed from the PDE alone (the interaction suppresses the fluctuations 60-fold by t = 1).

Run (from any directory):

    python examples/lln_clt_study.py [OUTDIR]

Figures (and ``summary.json``, the printed numbers) go to ``OUTDIR``, by default
``./figures-lln_clt_study`` in the current directory. Time: 40 to 60 s on two shared CPU
cores (the jobs run on a pool of 2 processes).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

import meanfield  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "data" / "configs" / "mmn-isotropic-study-gd.toml"
NAME = "lln_clt_study"

OVERRIDES = [
    "pde.cells=1200",  # 2,400 shipped; from 600 to 1,200 cells the prediction moves 0.3 %
    "study.n=[25, 50, 100, 200]",  # as shipped
    "study.replicas=32",  # 64 shipped: a variance to 25 % (one standard error)
]
#: the exact O(1/N) bias of the risk at t = 0, N (E R(mu_N) - R(rho_0)) (README, tests)
RISK_BIAS_T0 = 7.41


def main(out_dir: Path) -> dict:
    start = time.perf_counter()
    tree = meanfield.study(CONFIG, overrides=OVERRIDES, workers=2)
    seconds = time.perf_counter() - start
    study = tree["study"]
    n = study["n"].values.astype(int)
    t = study["time"].values
    w1, risk, mean_r = (study[name].to_dataset() for name in ("w1", "risk", "mean_r"))
    replicas = w1.sizes["replica"]
    sizes = ", ".join(map(str, n))
    print(
        f"meanfield.study: {CONFIG.name}, N = {sizes}; {replicas} replicas each; "
        f"{seconds:.1f} s (failed jobs: {study.attrs['failed_jobs']})"
    )

    # ---- LLN: the fitted slope of E W1 against N, and N x the bias of the risk
    print(
        f"\nLLN: slope of E W1(mu_N, rho_t) against N [95 % bootstrap]; N x risk bias, N = {sizes}"
    )
    for j, tj in enumerate(t):
        lo, hi = w1["slope_ci"].values[j]
        n_bias = n * risk["bias"].values[:, j]
        print(
            f"  t = {tj:4.2f}: slope {w1['slope'].values[j]:+.2f} [{lo:+.2f}, {hi:+.2f}]   "
            f"N x bias {', '.join(f'{b:.2f}' for b in n_bias)}"
        )

    # ---- CLT: N Var of the mean of |w| against Var_rho0(phi_0)
    n_var = mean_r["n_var"].values  # (n, time)
    predicted = mean_r["n_var_predicted"].values  # (time,)
    print(f"\nCLT: N Var of the mean of |w|, N = {sizes}  | predicted")
    for j, tj in enumerate(t):
        print(
            f"  t = {tj:4.2f}: {', '.join(f'{v:.2e}' for v in n_var[:, j])}  | {predicted[j]:.2e}"
        )
    # the measured N Var pooled over N (the prediction holds at every N for GD)
    ratio = n_var.mean(axis=0) / predicted
    print("  measured / predicted, pooled over N:", ", ".join(f"{r:.2f}" for r in ratio))

    # ---- the figure
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(t)))

    ax = axes[0]
    mean_w1 = w1["values"].values.mean(axis=1)  # (n, time): E W1 over replicas
    for j in (0, 2, len(t) - 1):  # three times, to keep it readable
        slope = w1["slope"].values[j]
        # the fitted line: the study's slope through the geometric mean of the points
        offset = np.mean(np.log(mean_w1[:, j]) - slope * np.log(n))
        ax.loglog(n, mean_w1[:, j], "o", color=colours[j])
        ax.loglog(
            n,
            np.exp(offset) * n**slope,
            "-",
            color=colours[j],
            label=f"t = {t[j]:g}: slope {slope:.2f}",
        )
    ax.set_xlabel("N (units)")
    ax.set_ylabel(r"$E\, W_1(\mu_N, \rho_t)$")
    ax.set_title("(a) LLN: distance to the PDE")
    ax.legend(frameon=False, fontsize="small")

    ax = axes[1]
    for j in (0, 1, len(t) - 1):
        ax.loglog(n, risk["bias"].values[:, j], "o-", color=colours[j], label=f"t = {t[j]:g}")
    ax.loglog(n, RISK_BIAS_T0 / n, "k--", lw=1, label=r"exact at $t = 0$: $7.41/N$")
    ax.set_xlabel("N (units)")
    ax.set_ylabel(r"$E\, R(\mu_N) - R(\rho_t)$")
    ax.set_title("(b) LLN: bias of the risk, O(1/N)")
    ax.legend(frameon=False, fontsize="small")

    ax = axes[2]
    markers = "osD^v"
    for i, ni in enumerate(n):
        ax.semilogy(
            t, n_var[i], markers[i % len(markers)], ms=5, mfc="none", label=f"measured, N = {ni}"
        )
    ax.semilogy(t, predicted, "k-", lw=1.5, label=r"CLT: $\mathrm{Var}_{\rho_0}(\phi_0)$")
    ax.set_xlabel("time $t$")
    ax.set_ylabel(r"$N\, \mathrm{Var}\, \langle |w|, \mu_N \rangle$")
    ax.set_title(f"(c) CLT: fluctuations ({replicas} replicas)")
    ax.legend(frameon=False, fontsize="small")

    for ax in axes[:2]:  # N on a log axis, labelled at the N run
        ax.set_xticks(n, [str(v) for v in n])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    figure = out_dir / "lln-clt.png"
    fig.savefig(figure, dpi=100)
    plt.close(fig)
    print(f"\nwrote {figure}")

    summary = {
        "n": n.tolist(),
        "time": t.tolist(),
        "w1_slope": w1["slope"].values.tolist(),
        "risk_bias": risk["bias"].values.tolist(),
        "n_var_mean_r": n_var.tolist(),
        "n_var_predicted_mean_r": predicted.tolist(),
        "pooled_ratio": ratio.tolist(),
        "figures": [str(figure)],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"total {time.perf_counter() - start:.1f} s")
    return summary


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd() / f"figures-{NAME}")
