"""PDE step throughput on the shipped MMN isotropic model, with the per-step cost split.

For each grid size, times (median of several batches, same process):

* a full Heun step (two right-hand sides, the step-size logic and the stage combination),
* the nonlocal part: Psi[m] = V + Phi (w * (Phi^T m)), the two M x P matrix products,
* the stencil: reconstruction, upwind fluxes and divergence for a given Psi,

and prints a Markdown table. ``--backend cupy`` runs it on a GPU (absolute times are only
meaningful there; on a CPU compare the ratios).

    python benchmarks/pde_step.py [--cells 2400 9600] [--backend numpy] [--d 40]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

from meanfield.backend import get_backend, to_numpy
from meanfield.equation import SPEED, MeanFieldPDE
from meanfield.grid import Grid
from meanfield.model import ACTIVATIONS, IsotropicGaussians, ScaledChiLaw, initial_density
from meanfield.operators import make_potential_fn, make_transport_fn
from meanfield.solvers import make_heun_stepper


def median_time(fn: Callable[[], object], sync: Callable[[object], object], batches: int = 7,
                min_seconds: float = 0.2) -> float:
    """Median seconds per call over ``batches`` batches of enough calls to last min_seconds."""
    sync(fn())
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds / batches or n < 3:
        sync(fn())
        n += 1
    per_batch = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(n):
            out = fn()
        sync(out)
        per_batch.append((time.perf_counter() - start) / n)
    return statistics.median(per_batch)


def bench(cells: int, backend_name: str, d: float) -> dict[str, float]:
    backend = get_backend(backend_name)
    xp = backend.xp
    model = IsotropicGaussians(d, 0.8, ACTIVATIONS["mmn"])
    grid = Grid(((0.0, 8.0),), (cells,), ("r",))
    pde = MeanFieldPDE(model, grid)
    rho = backend.asarray(initial_density(ScaledChiLaw(0.8, 40), grid))
    points = grid.points()
    kernel = model.kernel_features(points)
    psi_fn = make_potential_fn(model.potential(points), kernel, backend.asarray)
    transport = make_transport_fn(grid, 2, "mc")
    step = make_heun_stepper(pde.make_rhs(backend), 0.8)
    m = rho * grid.cell_volume
    psi = psi_fn(m)

    def sync(x: object) -> object:
        return to_numpy(x if not isinstance(x, tuple) else x[0])

    t_step = median_time(lambda: step(rho, math.inf).rho, sync)
    t_nonlocal = median_time(lambda: psi_fn(m), sync)
    t_stencil = median_time(lambda: transport(rho, psi, SPEED, xp)[0], sync)
    return {"cells": cells, "features": kernel.n_features, "step": t_step,
            "nonlocal": t_nonlocal, "stencil": t_stencil}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[2400, 9600])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--d", type=float, default=40.0)
    args = parser.parse_args()
    backend = get_backend(args.backend)
    print(f"backend: {backend.name} ({backend.device}); model: isotropic_gaussians d = {args.d:g}")
    print()
    print("| cells | features P | steps/s | us/step | nonlocal us | stencil us | "
          "2 x (nonlocal + stencil) / step |")
    print("|---|---|---|---|---|---|---|")
    for cells in args.cells:
        r = bench(cells, args.backend, args.d)
        floor = 2 * (r["nonlocal"] + r["stencil"])
        print(f"| {r['cells']} | {r['features']} | {1 / r['step']:.0f} | {r['step'] * 1e6:.0f} | "
              f"{r['nonlocal'] * 1e6:.0f} | {r['stencil'] * 1e6:.0f} | {floor / r['step']:.2f} |")


if __name__ == "__main__":
    main()
