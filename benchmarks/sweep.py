"""Cost per run of a parameter sweep stepped together (meanfield.pde.sweep) against solo runs.

One Heun step of S runs of the shipped isotropic model (a kappa sweep: one equation, S initial
laws, the kernel products with S columns), and of S stacked equations (a Delta sweep), against
S solo steps, in one process (medians of several batches):

    python benchmarks/sweep.py [--cells 2400] [--runs 1 4 16 64] [--backend numpy]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from meanfield.backends import get_backend, to_numpy
from meanfield.grid import Grid
from meanfield.model import ACTIVATIONS, IsotropicGaussians, ScaledChiLaw, initial_density
from meanfield.pde.equation import MeanFieldPDE
from meanfield.pde.sweep import StackedPDE

sys.path.insert(0, str(Path(__file__).parent))
from pde_step import heun_step_fn, median_time  # noqa: E402  (the same timer and step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2400)
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--backend", default="numpy")
    args = parser.parse_args()
    backend = get_backend(args.backend)
    grid = Grid(((0.0, 8.0),), (args.cells,), ("r",))
    pde = MeanFieldPDE(IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"]), grid)

    def step_time(rhs_owner: object, rho0: np.ndarray) -> float:
        rho = backend.asarray(rho0)
        return median_time(heun_step_fn(rhs_owner.make_rhs(backend), backend, rho), to_numpy)

    solo = step_time(pde, initial_density(ScaledChiLaw(0.8, 40), grid))
    print(
        f"backend: {backend.name} ({backend.device}); isotropic d = 40, {args.cells} cells; "
        f"solo step {solo * 1e6:.0f} us\n"
    )
    print(
        "| runs S | kappa sweep: us per run-step | vs solo | Delta sweep (stacked): "
        "us per run-step | vs solo |"
    )
    print("|---|---|---|---|---|")
    for s in args.runs:
        kappas = np.linspace(0.4, 1.2, s)
        rho0 = np.stack([initial_density(ScaledChiLaw(k, 40), grid) for k in kappas])
        t_kappa = step_time(pde, rho0) / s
        deltas = np.linspace(0.5, 0.9, s)
        stacked = StackedPDE(
            tuple(
                MeanFieldPDE(IsotropicGaussians(40, float(d), ACTIVATIONS["mmn"]), grid)
                for d in deltas
            )
        )
        same = np.stack([initial_density(ScaledChiLaw(0.8, 40), grid)] * s)
        t_delta = step_time(stacked, same) / s
        print(
            f"| {s} | {t_kappa * 1e6:.0f} | {t_kappa / solo:.2f} | {t_delta * 1e6:.0f} | "
            f"{t_delta / solo:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
