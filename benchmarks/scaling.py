"""How the cost of a step grows with the grid size M, the kernel rank K, the replicas R and the
units N, in one process (medians; ratios are what transfers between machines).

* PDE: one Heun step of the isotropic model, M = 1,200 ... 19,200 cells at the shipped K, and
  K varied through ``kernel_tol`` at M = 4,800 (the truncation order sets K).
* SGD: one ``online_sgd`` step (d = 40, B = 1), N at R = 16 and R at N = 400.

    python benchmarks/scaling.py [--backend numpy]

Each table gives the time per step and its ratio to the first row, next to the ratio of the
sizes (linear growth: the two ratios agree).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meanfield.backends import get_backend, to_numpy
from meanfield.grid import Grid
from meanfield.model import ACTIVATIONS, IsotropicGaussians, ScaledChiLaw, initial_density
from meanfield.pde.equation import MeanFieldPDE

sys.path.insert(0, str(Path(__file__).parent))
from pde_step import heun_step_fn, median_time  # noqa: E402
from sgd_step import numpy_rate  # noqa: E402


def pde_step_time(backend: object, cells: int, kernel_tol: float) -> tuple[float, int]:
    model = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"], kernel_tol=kernel_tol)
    grid = Grid(((0.0, 8.0),), (cells,), ("r",))
    rho = backend.asarray(initial_density(ScaledChiLaw(0.8, 40), grid))
    step = heun_step_fn(MeanFieldPDE(model, grid).make_rhs(backend), backend, rho)
    features = model.kernel_features(grid.points()).n_features
    return median_time(step, to_numpy), features


def table(title: str, header: str, rows: list[tuple]) -> None:
    print(f"\n{title}\n")
    print(f"| {header} | us per step | time ratio | size ratio |")
    print("|---|---|---|---|")
    t0, s0 = rows[0][1], rows[0][2]
    for label, t, size in rows:
        print(f"| {label} | {t * 1e6:.0f} | {t / t0:.2f} | {size / s0:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    args = parser.parse_args()
    backend = get_backend(args.backend)
    print(f"backend: {backend.name} ({backend.device})")
    rows = []
    for cells in (1200, 2400, 4800, 9600, 19200):
        t, k = pde_step_time(backend, cells, 1e-10)
        rows.append((f"M = {cells}, K = {k}", t, cells))
    table("PDE step against the grid size M (isotropic, d = 40)", "M, K", rows)
    rows = []
    for tol in (1e-3, 1e-6, 1e-10, 1e-14):
        t, k = pde_step_time(backend, 4800, tol)
        rows.append((f"K = {k} (kernel_tol {tol:g})", t, k))
    table("PDE step against the kernel rank K (M = 4,800; size ratio: K)", "K", rows)
    base = argparse.Namespace(
        model="isotropic", replicas=16, n=400, d=40, batch=1, numpy_steps=100, backend=args.backend
    )
    rows = []
    for n in (100, 200, 400, 800, 1600):
        rate = numpy_rate(argparse.Namespace(**{**vars(base), "n": n}), args.backend)
        rows.append((f"N = {n}", 1 / rate, n))
    table("SGD step against the units N (R = 16, d = 40, B = 1)", "N", rows)
    rows = []
    for r in (4, 16, 64, 256):
        rate = numpy_rate(argparse.Namespace(**{**vars(base), "replicas": r}), args.backend)
        rows.append((f"R = {r}", 1 / rate, r))
    table("SGD step against the replicas R (N = 400, d = 40, B = 1)", "R", rows)


if __name__ == "__main__":
    main()
